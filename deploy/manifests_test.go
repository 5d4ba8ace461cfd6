package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/podsearch/podsearch/cache"
	"github.com/podsearch/podsearch/internal/testenv"
)

// newObject returns an empty API object for an apiVersion and kind the manifests may use.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, true
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "batch/v1/Job":
		return &batchv1.Job{}, true
	case "batch/v1/CronJob":
		return &batchv1.CronJob{}, true
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	}
	return nil, false
}

// object is one decoded manifest document.
type object struct {
	file       string
	apiVersion string
	kind, name string
	raw        map[string]any // the document as generic JSON (what patches edit)
	typed      any
}

func (o *object) id() string { return o.kind + "/" + o.name }

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(Manifests, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitDocs splits a multi-document YAML file at "---" lines, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// decodeObject decodes one document strictly into its API type and checks that
// re-encoding the typed object keeps every field the document set (so a field whose name
// differs only in case, which Go's JSON decoding would accept, is caught too).
func decodeObject(file string, doc []byte) (*object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return nil, fmt.Errorf("%s: not YAML: %v", file, err)
	}
	typed, ok := newObject(head.APIVersion, head.Kind)
	if !ok {
		return nil, fmt.Errorf("%s: unknown apiVersion/kind %s/%s (a typo, or add the type to newObject)", file, head.APIVersion, head.Kind)
	}
	if head.Metadata.Name == "" {
		return nil, fmt.Errorf("%s: %s without metadata.name", file, head.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, typed); err != nil {
		return nil, fmt.Errorf("%s: %s %s: %v", file, head.Kind, head.Metadata.Name, err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(doc, &raw); err != nil {
		return nil, err
	}
	back, err := json.Marshal(typed)
	if err != nil {
		return nil, err
	}
	var round map[string]any
	if err := json.Unmarshal(back, &round); err != nil {
		return nil, err
	}
	if lost := lostFields("", raw, round); len(lost) > 0 {
		return nil, fmt.Errorf("%s: %s %s: fields not in the API type (check their spelling and case): %v", file, head.Kind, head.Metadata.Name, lost)
	}
	return &object{file: file, apiVersion: head.APIVersion, kind: head.Kind, name: head.Metadata.Name, raw: raw, typed: typed}, nil
}

// lostFields lists the paths set in orig that are missing from round, ignoring zero values
// that re-encoding omits.
func lostFields(prefix string, orig, round any) []string {
	var lost []string
	switch o := orig.(type) {
	case map[string]any:
		r, _ := round.(map[string]any)
		for k, v := range o {
			rv, ok := r[k]
			if !ok {
				if !isZero(v) {
					lost = append(lost, prefix+"/"+k)
				}
				continue
			}
			lost = append(lost, lostFields(prefix+"/"+k, v, rv)...)
		}
	case []any:
		r, _ := round.([]any)
		for i, v := range o {
			if i < len(r) {
				lost = append(lost, lostFields(prefix+"/"+strconv.Itoa(i), v, r[i])...)
			}
		}
	}
	sort.Strings(lost)
	return lost
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// build runs Kustomize itself (sigs.k8s.io/kustomize/api, the library kubectl kustomize is
// built on) on the kustomization in dir and decodes every object of its output strictly
// into its API type. Each file Kustomize reads is marked in used.
func build(t *testing.T, dir string, used map[string]bool) []*object {
	t.Helper()
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	fsys := &recordingFS{FileSystem: filesys.MakeFsOnDisk(), root: root, read: used}
	rm, err := runKustomize(fsys, filepath.Join(root, filepath.FromSlash(dir)))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []*object
	for _, r := range rm.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("kustomize build %s: %s: %v", dir, r.CurId(), err)
		}
		o, err := decodeObject(dir+" ("+r.GetKind()+" "+r.GetName()+")", doc)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

// runKustomize builds the kustomization in dir, turning a panic inside Kustomize (as two
// `$patch: delete` documents in one patch file cause) into an error.
func runKustomize(fsys filesys.FileSystem, dir string) (rm resmap.ResMap, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kustomize panicked: %v", r)
		}
	}()
	return krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
}

// recordingFS is the disk as Kustomize sees it, noting which files under root it reads
// (as slash-separated paths relative to root, the names of Manifests).
type recordingFS struct {
	filesys.FileSystem
	root string
	read map[string]bool
}

// ReadFile implements filesys.FileSystem.
func (f *recordingFS) ReadFile(name string) ([]byte, error) {
	if rel, err := filepath.Rel(f.root, name); err == nil && !strings.HasPrefix(rel, "..") {
		f.read[filepath.ToSlash(rel)] = true
	}
	return f.FileSystem.ReadFile(name)
}

func index(objs []*object, kind, name string) int {
	for i, o := range objs {
		if o.kind == kind && o.name == name {
			return i
		}
	}
	return -1
}

func find(objs []*object, kind, name string) *object {
	if i := index(objs, kind, name); i >= 0 {
		return objs[i]
	}
	return nil
}

// overlays are the kustomizations to build and check.
var overlays = []string{"base", "overlays/cpu", "overlays/managed-redis", "overlays/sharded"}

// withExternal adds to a built overlay the objects that exist out of band (the Secret):
// the *.example.yaml documents of its folder, else of the base.
func withExternal(t *testing.T, dir string, objs []*object) []*object {
	t.Helper()
	for _, d := range []string{dir, "base"} {
		names, err := fs.Glob(Manifests, path.Join(d, "*.example.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 0 {
			continue
		}
		for _, name := range names {
			for _, doc := range splitDocs(readFile(t, name)) {
				o, err := decodeObject(name, doc)
				if err != nil {
					t.Fatal(err)
				}
				objs = append(objs, o)
			}
		}
		return objs
	}
	t.Fatalf("%s: no *.example.yaml for the out-of-band objects", dir)
	return nil
}

// buildAll is build plus the out-of-band objects: everything the pods see at run time.
func buildAll(t *testing.T, dir string) []*object {
	t.Helper()
	return withExternal(t, dir, build(t, dir, map[string]bool{}))
}

func TestEveryManifestDecodesStrictlyAndIsUsed(t *testing.T) {
	used := map[string]bool{}
	for _, dir := range overlays {
		build(t, dir, used)
	}
	err := fs.WalkDir(Manifests, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		if strings.HasSuffix(p, "-values.yaml") {
			// Helm values for an external chart: plain YAML, strictly (no duplicate keys).
			var v map[string]any
			if err := yaml.UnmarshalStrict(readFile(t, p), &v); err != nil || len(v) == 0 {
				t.Errorf("%s: %v", p, err)
			}
			return nil
		}
		if strings.HasSuffix(p, ".example.yaml") {
			// Out-of-band objects (the Secret): decoded strictly by withExternal.
			return nil
		}
		if !used[p] {
			t.Errorf("%s is not used by any kustomization (%v)", p, overlays)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPatchFilesHoldOneDocument guards the managed-redis overlay's old failure: kubectl
// kustomize v5.5 panics on a patch file with two `$patch: delete` documents, although the
// library version the tests build with accepts it.
func TestPatchFilesHoldOneDocument(t *testing.T) {
	kfiles, err := fs.Glob(Manifests, "overlays/*/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kfiles = append(kfiles, "base/kustomization.yaml")
	for _, kf := range kfiles {
		var k types.Kustomization
		if err := yaml.Unmarshal(readFile(t, kf), &k); err != nil {
			t.Fatalf("%s: %v", kf, err)
		}
		for _, p := range k.Patches {
			if p.Path == "" {
				continue
			}
			name := path.Join(path.Dir(kf), p.Path)
			if n := len(splitDocs(readFile(t, name))); n != 1 {
				t.Errorf("%s: %d YAML documents; give each patch its own file", name, n)
			}
		}
	}
}

func TestStrictDecodingCatchesTypos(t *testing.T) {
	orig := string(readFile(t, "base/edge-deployment.yaml"))
	if _, err := decodeObject("edge", []byte(orig)); err != nil {
		t.Fatalf("the real manifest fails: %v", err)
	}
	for name, typo := range map[string][2]string{
		"unknown field":            {"readinessProbe:", "readynessProbe:"},
		"field in the wrong place": {"      terminationGracePeriodSeconds: 45", "      terminationGracePeriodSeconds: 45\n      replicas: 3"},
		"wrong case":               {"containerPort: 8080", "ContainerPort: 8080"},
		"wrong type":               {"replicas: 3", "replicas: three"},
		"duplicate field":          {"  replicas: 3", "  replicas: 3\n  replicas: 4"},
		"old API version":          {"apiVersion: apps/v1", "apiVersion: apps/v1beta1"},
	} {
		if !strings.Contains(orig, typo[0]) {
			t.Fatalf("%s: %q not in the manifest", name, typo[0])
		}
		bad := strings.Replace(orig, typo[0], typo[1], 1)
		if _, err := decodeObject("edge", []byte(bad)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

// podTemplate returns the pod template of a workload object, or nil.
func podTemplate(o *object) *corev1.PodTemplateSpec {
	switch x := o.typed.(type) {
	case *appsv1.Deployment:
		return &x.Spec.Template
	case *appsv1.StatefulSet:
		return &x.Spec.Template
	case *batchv1.Job:
		return &x.Spec.Template
	case *batchv1.CronJob:
		return &x.Spec.JobTemplate.Spec.Template
	}
	return nil
}

// podsMatching returns the workloads whose pod labels sel selects.
func podsMatching(objs []*object, sel labels.Selector) []*object {
	var out []*object
	for _, o := range objs {
		if pt := podTemplate(o); pt != nil && sel.Matches(labels.Set(pt.Labels)) {
			out = append(out, o)
		}
	}
	return out
}

func mustSelector(t *testing.T, o *object, ls *metav1.LabelSelector) labels.Selector {
	t.Helper()
	if ls == nil || (len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0) {
		t.Fatalf("%s: empty selector selects everything", o.id())
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatalf("%s: %v", o.id(), err)
	}
	return sel
}

// serverRoutes are the HTTP paths of the podsearch servers that probes may use.
var serverRoutes = map[string][]string{
	"serve-edge":    {"/healthz", "/readyz", "/metrics"},
	"serve-encoder": {"/healthz", "/readyz", "/metrics"},
}

func TestCrossReferences(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			objs := buildAll(t, dir)
			seen := map[string]bool{}
			for _, o := range objs {
				if seen[o.id()] {
					t.Errorf("%s defined twice", o.id())
				}
				seen[o.id()] = true
			}
			for _, o := range objs {
				checkObject(t, objs, o)
			}
		})
	}
}

func checkObject(t *testing.T, objs []*object, o *object) {
	switch x := o.typed.(type) {
	case *corev1.Service:
		sel := mustSelector(t, o, &metav1.LabelSelector{MatchLabels: x.Spec.Selector})
		pods := podsMatching(objs, sel)
		if len(pods) == 0 {
			t.Errorf("%s: selector %v matches no pods", o.id(), x.Spec.Selector)
		}
		for _, p := range x.Spec.Ports {
			for _, w := range pods {
				if !hasPort(podTemplate(w), p.TargetPort.String()) {
					t.Errorf("%s: targetPort %s is not a port of %s", o.id(), p.TargetPort.String(), w.id())
				}
			}
		}
	case *autoscalingv2.HorizontalPodAutoscaler:
		ref := x.Spec.ScaleTargetRef
		if target := find(objs, ref.Kind, ref.Name); target == nil || target.apiVersion != ref.APIVersion {
			t.Errorf("%s: scale target %s %s/%s does not exist", o.id(), ref.APIVersion, ref.Kind, ref.Name)
		}
		if x.Spec.MinReplicas == nil || *x.Spec.MinReplicas < 2 || *x.Spec.MinReplicas > x.Spec.MaxReplicas {
			t.Errorf("%s: replicas min %v max %d", o.id(), x.Spec.MinReplicas, x.Spec.MaxReplicas)
		}
	case *policyv1.PodDisruptionBudget:
		if len(podsMatching(objs, mustSelector(t, o, x.Spec.Selector))) == 0 {
			t.Errorf("%s: selector matches no pods", o.id())
		}
	case *appsv1.Deployment:
		if !mustSelector(t, o, x.Spec.Selector).Matches(labels.Set(x.Spec.Template.Labels)) {
			t.Errorf("%s: selector does not match its own pod labels", o.id())
		}
		for _, other := range objs {
			if d, ok := other.typed.(*appsv1.Deployment); ok && other != o &&
				mustSelector(t, o, x.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("%s: selector also matches the pods of %s", o.id(), other.id())
			}
		}
	case *networkingv1.NetworkPolicy:
		targets := podsMatching(objs, mustSelector(t, o, &x.Spec.PodSelector))
		if len(targets) == 0 {
			t.Errorf("%s: podSelector %v matches no pods", o.id(), x.Spec.PodSelector.MatchLabels)
		}
		for _, rule := range x.Spec.Ingress {
			for _, peer := range rule.From {
				if peer.PodSelector != nil && peer.NamespaceSelector == nil &&
					len(podsMatching(objs, mustSelector(t, o, peer.PodSelector))) == 0 {
					t.Errorf("%s: admits pods %v, which no workload runs", o.id(), peer.PodSelector.MatchLabels)
				}
			}
			for _, p := range rule.Ports {
				for _, w := range targets {
					if p.Port == nil || !hasPort(podTemplate(w), p.Port.String()) {
						t.Errorf("%s: port %v is not a port of %s", o.id(), p.Port, w.id())
					}
				}
			}
		}
	case *appsv1.StatefulSet:
		if !mustSelector(t, o, x.Spec.Selector).Matches(labels.Set(x.Spec.Template.Labels)) {
			t.Errorf("%s: selector does not match its own pod labels", o.id())
		}
		if find(objs, "Service", x.Spec.ServiceName) == nil {
			t.Errorf("%s: serviceName %s does not exist", o.id(), x.Spec.ServiceName)
		}
	}
	if pt := podTemplate(o); pt != nil {
		checkPod(t, objs, o, pt)
	}
}

func hasPort(pt *corev1.PodTemplateSpec, port string) bool {
	for _, c := range pt.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
				return true
			}
		}
	}
	return false
}

func checkPod(t *testing.T, objs []*object, o *object, pt *corev1.PodTemplateSpec) {
	vols := map[string]bool{}
	for _, v := range pt.Spec.Volumes {
		vols[v.Name] = true
		if v.PersistentVolumeClaim != nil && find(objs, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName) == nil {
			t.Errorf("%s: volume %s claims %s, which does not exist", o.id(), v.Name, v.PersistentVolumeClaim.ClaimName)
		}
	}
	if sa := pt.Spec.ServiceAccountName; sa != "" && find(objs, "ServiceAccount", sa) == nil {
		t.Errorf("%s: service account %s does not exist", o.id(), sa)
	}
	if port := pt.Annotations["prometheus.io/port"]; port != "" && !hasPort(pt, port) {
		t.Errorf("%s: prometheus.io/port %s is not a container port", o.id(), port)
	}
	for _, c := range pt.Spec.Containers {
		where := o.id() + " container " + c.Name
		if i := strings.LastIndex(c.Image, ":"); i < 0 || strings.Contains(c.Image[i:], "/") || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("%s: image %q needs a pinned tag", where, c.Image)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: needs cpu and memory requests and a memory limit", where)
		}
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				t.Errorf("%s: mounts volume %s, which the pod does not have", where, m.Name)
			}
		}
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = true
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				cm := find(objs, "ConfigMap", r.Name)
				if cm == nil {
					t.Errorf("%s: env %s: ConfigMap %s does not exist", where, e.Name, r.Name)
				} else if _, ok := cm.typed.(*corev1.ConfigMap).Data[r.Key]; !ok {
					t.Errorf("%s: env %s: ConfigMap %s has no key %s", where, e.Name, r.Name, r.Key)
				}
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				s := find(objs, "Secret", r.Name)
				if s == nil {
					t.Errorf("%s: env %s: Secret %s does not exist", where, e.Name, r.Name)
				} else if _, ok := s.typed.(*corev1.Secret).StringData[r.Key]; !ok {
					t.Errorf("%s: env %s: Secret %s has no key %s", where, e.Name, r.Name, r.Key)
				}
			}
		}
		for _, a := range c.Args {
			for _, m := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(a, -1) {
				if !env[m[1]] {
					t.Errorf("%s: argument %q uses $(%s), which is not in its env", where, a, m[1])
				}
			}
		}
		// Absolute paths the container is given (from its ConfigMap) must lie on a mount.
		for _, e := range c.Env {
			if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil {
				continue
			}
			cm := find(objs, "ConfigMap", e.ValueFrom.ConfigMapKeyRef.Name)
			if cm == nil {
				continue
			}
			v := cm.typed.(*corev1.ConfigMap).Data[e.ValueFrom.ConfigMapKeyRef.Key]
			if !strings.HasPrefix(v, "/") {
				continue
			}
			mounted := false
			for _, m := range c.VolumeMounts {
				if v == m.MountPath || strings.HasPrefix(v, strings.TrimSuffix(m.MountPath, "/")+"/") {
					mounted = true
				}
			}
			if !mounted {
				t.Errorf("%s: %s=%s is on no volume the container mounts", where, e.Name, v)
			}
		}
		sub := ""
		if strings.HasPrefix(c.Image, "podsearch/") && len(c.Args) > 0 {
			sub = c.Args[0]
			checkFlags(t, where, sub, c.Args[1:])
			checkPeers(t, objs, where, c.Args[1:])
		}
		for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				continue
			}
			if !hasPort(pt, p.HTTPGet.Port.String()) {
				t.Errorf("%s: probe port %s is not a container port", where, p.HTTPGet.Port.String())
			}
			if routes, ok := serverRoutes[sub]; ok && !contains(routes, p.HTTPGet.Path) {
				t.Errorf("%s: probe path %s is not an endpoint of %s (%v)", where, p.HTTPGet.Path, sub, routes)
			}
		}
		if strings.HasPrefix(c.Image, "podsearch/") && (c.ReadinessProbe != nil) != (sub == "serve-edge" || sub == "serve-encoder") {
			t.Errorf("%s: servers need a readiness probe, jobs none", where)
		}
		// Servers are ready when loaded (/readyz: shards for the edge, the model for the
		// encoder) and alive while the process answers (/healthz).
		if sub == "serve-edge" || sub == "serve-encoder" {
			if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
				t.Errorf("%s: readiness must probe /readyz", where)
			}
			if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
				t.Errorf("%s: liveness must probe /healthz", where)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkPeers checks that -peers URLs name Services that exist.
func checkPeers(t *testing.T, objs []*object, where string, args []string) {
	for _, a := range args {
		v, ok := strings.CutPrefix(strings.TrimPrefix(a, "-"), "-peers=")
		if !ok {
			v, ok = strings.CutPrefix(a, "-peers=")
		}
		if !ok {
			continue
		}
		for _, u := range strings.Split(v, ",") {
			host := strings.TrimPrefix(u, "http://")
			host, _, _ = strings.Cut(host, ":")
			if find(objs, "Service", host) == nil {
				t.Errorf("%s: peer %s is not a Service", where, u)
			}
		}
	}
}

var flagDecl = regexp.MustCompile(`\bfs\.(?:String|Int|Int64|Uint|Uint64|Bool|Duration|Float64|Func|BoolFunc)(?:Var)?\((?:&[^,()]+,\s*)?"([A-Za-z0-9-]+)"|\bfs\.(?:Var|TextVar)\([^,()]+,\s*"([A-Za-z0-9-]+)"`)

// checkFlags checks that every -flag in args is declared by the subcommand's source file
// (cmd/podsearch/cmd_SUB.go). A subcommand whose file is absent is only logged.
func checkFlags(t *testing.T, where, sub string, args []string) {
	root := testenv.Root(t)
	src, err := os.ReadFile(filepath.Join(root, "cmd", "podsearch", "cmd_"+strings.ReplaceAll(sub, "-", "_")+".go"))
	if err != nil {
		t.Logf("%s: cannot check the flags of `podsearch %s`: %v", where, sub, err)
		return
	}
	declared := map[string]bool{}
	for _, m := range flagDecl.FindAllSubmatch(src, -1) {
		declared[string(m[1])+string(m[2])] = true
	}
	if len(declared) == 0 {
		t.Logf("%s: found no flag declarations for `podsearch %s`", where, sub)
		return
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !declared[name] {
			t.Errorf("%s: `podsearch %s` has no flag -%s", where, sub, name)
		}
	}
}

func TestEncoderGPUAndCPU(t *testing.T) {
	gpu := func(dir string) (encoder, job bool) {
		objs := build(t, dir, map[string]bool{})
		has := func(o *object) bool {
			pt := podTemplate(o)
			_, ok := pt.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"]
			return ok && reflect.DeepEqual(pt.Spec.Containers[0].Args[len(pt.Spec.Containers[0].Args)-1], "-provider=cuda")
		}
		return has(find(objs, "Deployment", "podsearch-encoder")), has(find(objs, "Job", "podsearch-index-build"))
	}
	if e, j := gpu("base"); !e || !j {
		t.Errorf("base: encoder GPU %v, index build GPU %v; want both on nvidia.com/gpu with -provider=cuda", e, j)
	}
	if e, j := gpu("overlays/cpu"); e || j {
		t.Errorf("cpu overlay: encoder GPU %v, index build GPU %v; want neither", e, j)
	}
	objs := buildAll(t, "base")
	svc := find(objs, "Service", "podsearch-encoder-headless").typed.(*corev1.Service)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Error("the encoder Service must be headless so the pool client sees every member")
	}
	cm := find(objs, "ConfigMap", "podsearch-config").typed.(*corev1.ConfigMap)
	if host, _, _ := strings.Cut(cm.Data["ENCODER_ENDPOINTS"], ":"); host != svc.Name {
		t.Errorf("ENCODER_ENDPOINTS %q does not name the headless Service", cm.Data["ENCODER_ENDPOINTS"])
	}
}

func TestRedisVariants(t *testing.T) {
	base := buildAll(t, "base")
	if find(build(t, "base", map[string]bool{}), "Secret", "podsearch-tokens") != nil {
		t.Error("the kustomization must not apply the Secret (it would overwrite the real one)")
	}
	url := find(base, "Secret", "podsearch-tokens").typed.(*corev1.Secret).StringData["redis-url"]
	opts, err := cache.ParseRedisURL(url)
	if err != nil || len(opts.Addrs) != 1 {
		t.Fatalf("base redis-url %q: %v", url, err)
	}
	host, _, _ := strings.Cut(opts.Addrs[0], ":")
	if find(base, "Service", host) == nil || find(base, "StatefulSet", "podsearch-redis") == nil {
		t.Errorf("base redis-url %q must name the Redis StatefulSet's Service", url)
	}
	managed := buildAll(t, "overlays/managed-redis")
	if find(managed, "StatefulSet", "podsearch-redis") != nil || find(managed, "Service", "podsearch-redis") != nil {
		t.Error("managed-redis overlay still runs the in-cluster Redis")
	}
	for _, objs := range [][]*object{base, managed} {
		u := find(objs, "Secret", "podsearch-tokens").typed.(*corev1.Secret).StringData["redis-url"]
		if _, err := cache.ParseRedisURL(u); err != nil {
			t.Errorf("redis-url %q: %v", u, err)
		}
	}
	if u := find(managed, "Secret", "podsearch-tokens").typed.(*corev1.Secret).StringData["redis-url"]; !strings.Contains(u, "mode=cluster") {
		t.Errorf("managed-redis redis-url %q is not a cluster URL", u)
	}
	values := readFile(t, "overlays/managed-redis/redis-cluster-values.yaml")
	if !bytes.Contains(values, []byte("maxmemory-policy allkeys-lfu")) {
		t.Error("the Redis Cluster values must evict with allkeys-lfu (docs/operations.md)")
	}
}

// admitted returns the names of the workloads in this namespace whose pods a NetworkPolicy
// selecting the pods of target admits (any port), and whether any policy selects them.
func admitted(t *testing.T, objs []*object, target *object) (map[string]bool, bool) {
	t.Helper()
	who, guarded := map[string]bool{}, false
	tl := labels.Set(podTemplate(target).Labels)
	for _, o := range objs {
		np, ok := o.typed.(*networkingv1.NetworkPolicy)
		if !ok || !mustSelector(t, o, &np.Spec.PodSelector).Matches(tl) {
			continue
		}
		guarded = true
		for _, rule := range np.Spec.Ingress {
			if len(rule.From) == 0 {
				who["*"] = true // from everywhere
			}
			for _, peer := range rule.From {
				if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil {
					continue // other namespaces or addresses: not this namespace's workloads
				}
				for _, w := range podsMatching(objs, mustSelector(t, o, peer.PodSelector)) {
					who[w.name] = true
				}
			}
		}
	}
	return who, guarded
}

// Only the edges (and the warm-up job, which writes the cache and calls the encoders)
// reach Redis and the encoders.
func TestNetworkPolicies(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir, map[string]bool{})
			want := map[string]bool{"podsearch-cache-warmup": true}
			for _, o := range objs {
				if pt := podTemplate(o); pt != nil && pt.Labels["app.kubernetes.io/component"] == "edge" {
					want[o.name] = true
				}
			}
			targets := []string{"Deployment/podsearch-encoder"}
			if find(objs, "StatefulSet", "podsearch-redis") != nil {
				targets = append(targets, "StatefulSet/podsearch-redis")
			}
			for _, id := range targets {
				kind, name, _ := strings.Cut(id, "/")
				who, guarded := admitted(t, objs, find(objs, kind, name))
				if !guarded {
					t.Errorf("%s: no NetworkPolicy selects its pods", id)
				}
				if !reflect.DeepEqual(who, want) {
					t.Errorf("%s: admits %v, want only %v", id, who, want)
				}
			}
		})
	}
}

// The in-cluster Redis requires a password from the Secret, its probe authenticates, and
// the edges' redis-url carries the same password.
func TestRedisRequiresPassword(t *testing.T) {
	objs := buildAll(t, "base")
	sec := find(objs, "Secret", "podsearch-tokens").typed.(*corev1.Secret).StringData
	c := podTemplate(find(objs, "StatefulSet", "podsearch-redis")).Spec.Containers[0]
	fromSecret := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "podsearch-tokens" {
			fromSecret[e.Name] = e.ValueFrom.SecretKeyRef.Key
		}
	}
	args := strings.Join(c.Args, " ")
	m := regexp.MustCompile(`--requirepass \$\(([A-Z_]+)\)`).FindStringSubmatch(args)
	if m == nil || fromSecret[m[1]] != "redis-password" {
		t.Fatalf("redis args %q: want --requirepass $(VAR) with VAR from the Secret's redis-password", args)
	}
	if fromSecret["REDISCLI_AUTH"] != "redis-password" {
		t.Error("the redis-cli readiness probe does not authenticate (REDISCLI_AUTH)")
	}
	o, err := cache.ParseRedisURL(sec["redis-url"])
	if err != nil {
		t.Fatal(err)
	}
	if o.Password == "" || o.Password != sec["redis-password"] {
		t.Errorf("redis-url password %q does not match redis-password %q", o.Password, sec["redis-password"])
	}
	for _, name := range []string{"podsearch-edge", "podsearch-cache-warmup"} {
		var w *object
		if w = find(objs, "Deployment", name); w == nil {
			w = find(objs, "CronJob", name)
		}
		ok := false
		for _, e := range podTemplate(w).Spec.Containers[0].Env {
			if e.Name == "PODSEARCH_CACHE_SECRET" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ok = len(sec[e.ValueFrom.SecretKeyRef.Key]) >= cache.MinSecretBytes
			}
		}
		if !ok {
			t.Errorf("%s: no PODSEARCH_CACHE_SECRET of at least %d bytes from the Secret", name, cache.MinSecretBytes)
		}
	}
}

func TestShardedEdgesFanOutToEachOther(t *testing.T) {
	objs := buildAll(t, "overlays/sharded")
	shardArgs := map[string]string{}
	for _, name := range []string{"podsearch-edge", "podsearch-edge-shard-1"} {
		d := find(objs, "Deployment", name)
		if d == nil {
			t.Fatalf("no Deployment %s", name)
		}
		args := strings.Join(podTemplate(d).Spec.Containers[0].Args, " ")
		shard := regexp.MustCompile(`-shards=(\d+)`).FindStringSubmatch(args)
		peer := regexp.MustCompile(`-peers=http://podsearch-edge-shard-(\d+)`).FindStringSubmatch(args)
		if shard == nil || peer == nil || shard[1] == peer[1] {
			t.Fatalf("%s: args %q must serve one shard and peer with the other", name, args)
		}
		shardArgs[shard[1]] = peer[1]
	}
	if shardArgs["0"] != "1" || shardArgs["1"] != "0" {
		t.Errorf("shard groups %v do not cover shards 0 and 1 crosswise", shardArgs)
	}
	// The public Service reaches both groups.
	svc := find(objs, "Service", "podsearch-edge").typed.(*corev1.Service)
	if n := len(podsMatching(objs, labels.SelectorFromSet(svc.Spec.Selector))); n != 2 {
		t.Errorf("public edge Service reaches %d edge groups, want 2", n)
	}
}
