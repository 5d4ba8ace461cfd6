// Package deploy holds podsearch's Kubernetes manifests: a Kustomize base (edge Deployment,
// Service, HorizontalPodAutoscaler and PodDisruptionBudget; the GPU encoder Deployment with
// its headless Service for the pool client; a single-node Redis StatefulSet with a password;
// NetworkPolicies that let only the edges and the warm-up job reach Redis and the encoders;
// the ConfigMap, and the shape of the token Secret, which is created out of band; the
// index-build Job and the cache warm-up CronJob) and overlays (cpu, managed-redis, sharded).
// docs/operations.md explains them.
//
// The Go package embeds the manifests (Manifests) and its test decodes every one of them
// strictly into the Kubernetes API types (k8s.io/api), so a misspelt or misplaced field
// fails CI, then builds each overlay with Kustomize itself (sigs.k8s.io/kustomize/api) and
// checks the references between objects: Service and PDB selectors
// match pods, HPAs target existing Deployments, probes name real ports and endpoints,
// environment references name real ConfigMap and Secret keys, container arguments are
// real flags of the podsearch subcommand they run.
//
// Why these dependencies: k8s.io/api and k8s.io/apimachinery are the Kubernetes types
// themselves (the only faithful schema to decode against), and sigs.k8s.io/yaml is the
// YAML front end Kubernetes uses (YAML to JSON, then the types' JSON decoding), with a
// strict mode that refuses unknown and duplicate fields; sigs.k8s.io/kustomize/api is the
// library kubectl kustomize runs, so an overlay the tests build is one operators can apply.
package deploy

import "embed"

// Manifests are the YAML files of the base and the overlays.
//
//go:embed base overlays
var Manifests embed.FS
