package index

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/podsearch/podsearch/core/vec"
)

// TestDeleteAddCompactEqualsFreshBuild builds an index of part of the episodes, deletes
// some, adds the rest (and replaces one), and checks every search equals a fresh build of
// the final episode set with the same model, before compaction, after it, and reopened.
func TestDeleteAddCompactEqualsFreshBuild(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	model := trainTestModel(t, vecs)
	n := len(docs)
	cut := n * 3 / 4
	dirA := filepath.Join(t.TempDir(), "a")
	ix := createOpen(t, dirA, model, 3, docs[:cut], vecs[:cut*testDim], "test-fingerprint")
	var del []string
	for i := 0; i < cut; i += 9 {
		del = append(del, docs[i].ID)
	}
	if got, err := ix.Delete(append(del, "no-such-id")); err != nil || got != len(del) {
		t.Fatalf("Delete = %d, %v; want %d", got, err, len(del))
	}
	// Replace episode 1 (not deleted) with new text, and add the remaining episodes.
	replaced := docs[1]
	replaced.Title, replaced.Text = "Replaced episode about sourdough baking", "Replaced episode about sourdough baking and bread"
	added := append([]Doc{replaced}, docs[cut:]...)
	addedVecs := append(embedText(replaced.Text), vecs[cut*testDim:]...)
	if err := ix.Add(added[:10], addedVecs[:10*testDim]); err != nil {
		t.Fatal(err)
	}
	if err := ix.Add(added[10:], addedVecs[10*testDim:]); err != nil {
		t.Fatal(err)
	}
	// The final set, in a fresh index.
	deleted := map[string]bool{}
	for _, id := range del {
		deleted[id] = true
	}
	var final []Doc
	var finalVecs []float32
	for i, d := range docs[:cut] {
		if deleted[d.ID] || d.ID == replaced.ID {
			continue
		}
		final = append(final, d)
		finalVecs = append(finalVecs, vec.Row(vecs, testDim, i)...)
	}
	final = append(final, added...)
	finalVecs = append(finalVecs, addedVecs...)
	dirB := filepath.Join(t.TempDir(), "b")
	fresh := createOpen(t, dirB, model, 3, final, finalVecs, "")
	if ix.Len() != fresh.Len() || ix.Len() != len(final) {
		t.Fatalf("live episodes %d, fresh build %d, want %d", ix.Len(), fresh.Len(), len(final))
	}
	qs := testQueries(docs)
	qs = append(qs, queryCase{vec: embedText("sourdough baking"), text: "sourdough baking", opts: SearchOptions{K: 3, NProbe: 8}})
	want := allResults(t, fresh, qs)
	if h := want[len(want)-3]; len(h) == 0 || h[0].ID != replaced.ID || h[0].Title != replaced.Title {
		t.Fatalf("keyword search for the replaced episode found %v", ids(h))
	}
	equalResults(t, "with deltas and tombstones", allResults(t, ix, qs), want)
	if err := ix.Compact(); err != nil {
		t.Fatal(err)
	}
	if ix.Segments() != 3 {
		t.Fatalf("%d segments after compaction, want 3", ix.Segments())
	}
	equalResults(t, "compacted", allResults(t, ix, qs), want)
	re, err := Open(dirA, "test-fingerprint", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer re.Close()
	equalResults(t, "compacted and reopened", allResults(t, re, qs), want)
	// Shards must not change results either: one shard gives the same hits.
	dirC := filepath.Join(t.TempDir(), "c")
	one := createOpen(t, dirC, model, 1, final, finalVecs, "")
	equalResults(t, "one shard", stripShard(allResults(t, one, qs)), stripShard(want))
}

// TestSearchDuringUpdates searches from several goroutines while episodes are added,
// deleted and compacted (run with -race).
func TestSearchDuringUpdates(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	model := trainTestModel(t, vecs)
	dir := t.TempDir()
	half := len(docs) / 2
	ix := createOpen(t, dir, model, 2, docs[:half], vecs[:half*testDim], "")
	stop := make(chan struct{})
	errs := make(chan error, 3)
	for g := 0; g < 3; g++ {
		go func(g int) {
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				d := docs[(g*50+i)%len(docs)]
				if _, err := ix.SearchHybrid(context.Background(), embedText(d.Text), d.Title, HybridOptions{Dense: SearchOptions{K: 5, NProbe: 2}}); err != nil {
					errs <- err
					return
				}
				_ = ix.Len()
				_ = ix.Segments()
			}
		}(g)
	}
	for start := half; start < len(docs); start += 40 {
		end := min(start+40, len(docs))
		if err := ix.Add(docs[start:end], vecs[start*testDim:end*testDim]); err != nil {
			t.Fatal(err)
		}
		if _, err := ix.Delete([]string{docs[start-half].ID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.Compact(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	for g := 0; g < 3; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if want := len(docs) - (len(docs)-half+39)/40; ix.Len() != want {
		t.Fatalf("%d live episodes, want %d", ix.Len(), want)
	}
}

// TestUpdate: Update deletes, adds (appending the vectors file) and compacts in that order,
// and refuses vectors of another model before adding anything.
func TestUpdate(t *testing.T) {
	docs, vecs := loadEpisodes(t)
	n := len(docs) - 20
	m := trainTestModel(t, vecs)
	dir := t.TempDir()
	if err := Create(dir, m, 2, docs[:n], vecs[:n*testDim]); err != nil {
		t.Fatal(err)
	}
	vf, err := os.Create(filepath.Join(dir, VectorsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := vec.WriteFvecs(vf, vecs[:n*testDim], testDim); err != nil {
		t.Fatal(err)
	}
	vf.Close()
	add := func(fp string) func(int) ([]Doc, []float32, string, error) {
		return func(d int) ([]Doc, []float32, string, error) {
			if d != testDim {
				t.Fatalf("Add called with width %d", d)
			}
			return docs[n:], vecs[n*testDim:], fp, nil
		}
	}
	err = Update(dir, UpdateOptions{Add: add("another-model")})
	if !errors.Is(err, ErrWrongModel) {
		t.Fatalf("vectors of another model: %v", err)
	}
	if err := Update(dir, UpdateOptions{Delete: []string{docs[0].ID, "no-such-id"}, Add: add(m.Fingerprint), Compact: true}); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(dir, "", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Len() != len(docs)-1 || ix.Segments() != 2 {
		t.Fatalf("after the update: %d episodes in %d segments", ix.Len(), ix.Segments())
	}
	got, d, err := vec.ReadFvecs(filepath.Join(dir, VectorsFile))
	if err != nil || d != testDim || !slices.Equal(got, vecs) {
		t.Fatalf("vectors file: %d values of width %d, %v", len(got), d, err)
	}
}
