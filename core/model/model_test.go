package model

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTFJS(t *testing.T, manifest string, shard []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shard1"), shard, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const tinyManifest = `{"weightsManifest":[{"paths":["shard1"],"weights":[
 {"name":"a","shape":[2],"dtype":"float32"},{"name":"b","shape":[],"dtype":"int32"}]}]}`

func tinyShard() []byte {
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, math.Float32bits(1.5))
	binary.Write(&buf, binary.LittleEndian, math.Float32bits(-2))
	binary.Write(&buf, binary.LittleEndian, int32(7))
	return buf.Bytes()
}

func TestReadTFJS(t *testing.T) {
	w, err := ReadTFJS(writeTFJS(t, tinyManifest, tinyShard()))
	if err != nil {
		t.Fatal(err)
	}
	if a := w["a"]; len(a.F32) != 2 || a.F32[0] != 1.5 || a.F32[1] != -2 {
		t.Errorf("a = %+v", a)
	}
	if b := w["b"]; len(b.I32) != 1 || b.I32[0] != 7 {
		t.Errorf("b = %+v", b)
	}
}

func TestReadTFJSRejectsBadInput(t *testing.T) {
	cases := map[string]struct{ manifest, want string }{
		"truncated shard": {tinyManifest, "truncated"},
		"not json":        {`{`, "model.json"},
		"no weights":      {`{"weightsManifest":[]}`, "no weights"},
		"escaping path":   {strings.Replace(tinyManifest, `"shard1"`, `"../shard1"`, 1), "leaves"},
		"unknown dtype":   {strings.Replace(tinyManifest, `"int32"`, `"float16"`, 1), "dtype"},
		"leftover bytes":  {strings.Replace(tinyManifest, `"shape":[2]`, `"shape":[1]`, 1), "left over"},
	}
	for name, c := range cases {
		shard := tinyShard()
		if name == "truncated shard" {
			shard = shard[:9]
		}
		_, err := ReadTFJS(writeTFJS(t, c.manifest, shard))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", name, err, c.want)
		}
	}
}

func TestExportNeedsEveryWeight(t *testing.T) {
	if _, err := Export(map[string]Tensor{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("export without weights: %v", err)
	}
}

func TestFingerprintChangesWithEitherPart(t *testing.T) {
	a := Fingerprint([]byte("model"), []byte("vocab"))
	if len(a) != 64 || a == Fingerprint([]byte("model2"), []byte("vocab")) || a == Fingerprint([]byte("model"), []byte("vocab2")) {
		t.Fatal("fingerprint does not depend on both the model and the vocabulary")
	}
}
