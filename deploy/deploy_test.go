// Package deploy_test checks the deployment kit against the gateway it
// deploys: the kustomize base and overlay (deploy/base,
// deploy/overlays/example), the nginx example (deploy/nginx), the Dockerfile
// and .dockerignore at the repository root, and the observability kit
// (deploy/observability: every metric the dashboard and the alerts use must
// be one the gateway really exposes; see metrics_test.go).
//
// When kubectl is on PATH, the base and the overlay are also rendered with
// `kubectl kustomize` and the rendered objects checked the same way.
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// ---- Kubernetes objects (only the fields the checks read) ----

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// object is one YAML document with its kind; node is the whole document.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   meta   `yaml:"metadata"`
	source     string
	node       *yaml.Node
}

func (o object) String() string { return o.Kind + "/" + o.Metadata.Name + " (" + o.source + ")" }

func (o object) decode(t *testing.T, v any) {
	t.Helper()
	if err := o.node.Decode(v); err != nil {
		t.Fatalf("%s: %v", o, err)
	}
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type deployment struct {
	Spec struct {
		Replicas *int     `yaml:"replicas"`
		Selector selector `yaml:"selector"`
		Template struct {
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot   *bool  `yaml:"runAsNonRoot"`
		RunAsUser      *int64 `yaml:"runAsUser"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	Exec any `yaml:"exec"`
}

type container struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	StartupProbe   *probe `yaml:"startupProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
			Exec    any `yaml:"exec"`
			HTTPGet any `yaml:"httpGet"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	SecurityContext *struct {
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		Privileged               *bool  `yaml:"privileged"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
		SeccompProfile *struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	} `yaml:"securityContext"`
}

type service struct {
	Spec struct {
		Type            string            `yaml:"type"`
		SessionAffinity string            `yaml:"sessionAffinity"`
		Selector        map[string]string `yaml:"selector"`
		Ports           []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type hpa struct {
	Spec struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas *int `yaml:"minReplicas"`
		MaxReplicas int  `yaml:"maxReplicas"`
		Metrics     []struct {
			Type     string `yaml:"type"`
			Resource *struct {
				Name   string `yaml:"name"`
				Target struct {
					Type               string `yaml:"type"`
					AverageUtilization int    `yaml:"averageUtilization"`
				} `yaml:"target"`
			} `yaml:"resource"`
		} `yaml:"metrics"`
		Behavior *struct {
			ScaleDown *struct {
				StabilizationWindowSeconds *int `yaml:"stabilizationWindowSeconds"`
			} `yaml:"scaleDown"`
		} `yaml:"behavior"`
	} `yaml:"spec"`
}

type pdb struct {
	Spec struct {
		MinAvailable   any      `yaml:"minAvailable"`
		MaxUnavailable any      `yaml:"maxUnavailable"`
		Selector       selector `yaml:"selector"`
	} `yaml:"spec"`
}

type ingress struct {
	Spec struct {
		IngressClassName string `yaml:"ingressClassName"`
		Rules            []struct {
			Host string `yaml:"host"`
			HTTP struct {
				Paths []struct {
					Path     string `yaml:"path"`
					PathType string `yaml:"pathType"`
					Backend  struct {
						Service struct {
							Name string `yaml:"name"`
							Port struct {
								Name   string `yaml:"name"`
								Number int    `yaml:"number"`
							} `yaml:"port"`
						} `yaml:"service"`
					} `yaml:"backend"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

type configMap struct {
	Data map[string]string `yaml:"data"`
}

type kustomization struct {
	Kind      string   `yaml:"kind"`
	Resources []string `yaml:"resources"`
	Namespace string   `yaml:"namespace"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
	Patches []struct {
		Path   string `yaml:"path"`
		Target any    `yaml:"target"`
	} `yaml:"patches"`
	PatchesStrategicMerge []string `yaml:"patchesStrategicMerge"`
}

// The API versions of the kinds the kit uses (current, GA).
var apiVersions = map[string]string{
	"Deployment":              "apps/v1",
	"Service":                 "v1",
	"ConfigMap":               "v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"PodDisruptionBudget":     "policy/v1",
	"Ingress":                 "networking.k8s.io/v1",
}

// ---- reading ----

// readObjects parses every YAML document of data.
func readObjects(t *testing.T, source string, data []byte) []object {
	t.Helper()
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if len(n.Content) == 0 {
			continue // an empty document
		}
		var o object
		if err := n.Decode(&o); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
			t.Fatalf("%s: a document without apiVersion, kind or metadata.name", source)
		}
		o.source = source
		o.node = &n
		objs = append(objs, o)
	}
	return objs
}

func readFileObjects(t *testing.T, path string) []object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readObjects(t, path, data)
}

func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.Kind != "Kustomization" {
		t.Errorf("%s/kustomization.yaml: kind %q, want Kustomization", dir, k.Kind)
	}
	return k
}

// baseObjects are the objects of every resource the base lists.
func baseObjects(t *testing.T) []object {
	t.Helper()
	k := readKustomization(t, "base")
	var objs []object
	for _, r := range k.Resources {
		objs = append(objs, readFileObjects(t, filepath.Join("base", r))...)
	}
	return objs
}

// one returns the only object of kind (and name, when not empty).
func one(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	var found []object
	for _, o := range objs {
		if o.Kind == kind && (name == "" || o.Metadata.Name == name) {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q, found %d", kind, name, len(found))
	}
	return found[0]
}

// ---- quantities ----

// bytesOf parses a Kubernetes memory quantity ("512Mi", "1Gi", "1G", "1000").
func bytesOf(q string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(q, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	return strconv.ParseInt(q, 10, 64)
}

// goBytesOf parses a GOMEMLIMIT value ("900MiB", "1GiB", "1000000").
func goBytesOf(q string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if n, ok := strings.CutSuffix(q, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	return strconv.ParseInt(q, 10, 64)
}

// milliCPU parses a CPU quantity ("500m", "1", "1.5").
func milliCPU(q string) (int64, error) {
	if n, ok := strings.CutSuffix(q, "m"); ok {
		return strconv.ParseInt(n, 10, 64)
	}
	f, err := strconv.ParseFloat(q, 64)
	return int64(f * 1000), err
}

// ---- the gateway's configuration as deployed ----

// settings is the environment the gateway container gets from its
// ConfigMap and its literal env values, and the defaults of cmd/gateway for
// what neither sets.
type settings map[string]string

func settingsOf(t *testing.T, objs []object, c container) settings {
	t.Helper()
	s := settings{ // cmd/gateway/config.go defaults used by the checks
		"GATEWAY_ADDR":           ":8080",
		"GATEWAY_SHUTDOWN_GRACE": "25s",
		"GATEWAY_MAX_SESSIONS":   "10000",
		"GATEWAY_MAX_STREAMS":    "10000",
		"GATEWAY_HEARTBEAT":      "15s",
		"CHATIO_URL":             "embedded",
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		var cm configMap
		one(t, objs, "ConfigMap", ef.ConfigMapRef.Name).decode(t, &cm)
		for k, v := range cm.Data {
			s[k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			s[e.Name] = e.Value
		}
	}
	return s
}

func (s settings) duration(t *testing.T, key string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s[key])
	if err != nil {
		t.Fatalf("%s=%q: %v", key, s[key], err)
	}
	return d
}

func (s settings) int(t *testing.T, key string) int {
	t.Helper()
	n, err := strconv.Atoi(s[key])
	if err != nil {
		t.Fatalf("%s=%q: %v", key, s[key], err)
	}
	return n
}

func (s settings) port(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(s["GATEWAY_ADDR"])
	if err != nil {
		t.Fatalf("GATEWAY_ADDR=%q: %v", s["GATEWAY_ADDR"], err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("GATEWAY_ADDR=%q: %v", s["GATEWAY_ADDR"], err)
	}
	return n
}

// Sizing assumption of deployment.yaml: at most this much memory per
// session with its stream.
const bytesPerSession = 32 << 10

// ---- the checks of one set of objects (the base, or a rendered overlay) ----

// workload is what the checks of one set of objects found, for the checks
// that compare with other files.
type workload struct {
	settings       settings
	port           int   // the gateway's container port
	memLimit       int64 // bytes
	minReplicas    int
	preStopSeconds int
}

// checkWorkload checks a complete set of objects: the base's files, or the
// output of kustomize for the base or an overlay.
func checkWorkload(t *testing.T, objs []object) workload {
	t.Helper()
	var w workload
	for _, o := range objs {
		if want, ok := apiVersions[o.Kind]; !ok {
			t.Errorf("%s: unexpected kind", o)
		} else if o.APIVersion != want {
			t.Errorf("%s: apiVersion %q, want %q", o, o.APIVersion, want)
		}
	}

	dobj := one(t, objs, "Deployment", "")
	var d deployment
	dobj.decode(t, &d)
	podLabels := d.Spec.Template.Metadata.Labels
	if len(d.Spec.Selector.MatchLabels) == 0 || !subset(d.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("%s: selector %v does not select the pod labels %v", dobj, d.Spec.Selector.MatchLabels, podLabels)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("%s: replicas is set (%d): the HorizontalPodAutoscaler owns it, and apply would reset it", dobj, *d.Spec.Replicas)
	}
	ps := d.Spec.Template.Spec
	if len(ps.Containers) != 1 {
		t.Fatalf("%s: want one container, got %d", dobj, len(ps.Containers))
	}
	c := ps.Containers[0]
	w.settings = settingsOf(t, objs, c)
	w.port = w.settings.port(t)

	// Ports and probes.
	portByName := map[string]int{}
	for _, p := range c.Ports {
		portByName[p.Name] = p.ContainerPort
	}
	if portByName["http"] != w.port {
		t.Errorf("%s: container port \"http\" is %d, GATEWAY_ADDR listens on %d", dobj, portByName["http"], w.port)
	}
	if a := d.Spec.Template.Metadata.Annotations["prometheus.io/port"]; a != "" && a != strconv.Itoa(w.port) {
		t.Errorf("%s: prometheus.io/port %s, the gateway listens on %d", dobj, a, w.port)
	}
	probePort := func(pr *probe, name, path string) {
		if pr == nil || pr.HTTPGet == nil {
			t.Errorf("%s: no %s httpGet probe", dobj, name)
			return
		}
		if pr.HTTPGet.Path != path {
			t.Errorf("%s: %s probe path %q, want %q", dobj, name, pr.HTTPGet.Path, path)
		}
		var port int
		switch p := pr.HTTPGet.Port.(type) {
		case int:
			port = p
		case string:
			port = portByName[p]
		}
		if port != w.port {
			t.Errorf("%s: %s probe port %v is not the gateway's port %d", dobj, name, pr.HTTPGet.Port, w.port)
		}
	}
	probePort(c.ReadinessProbe, "readiness", "/readyz")
	probePort(c.LivenessProbe, "liveness", "/healthz")
	if c.StartupProbe != nil {
		probePort(c.StartupProbe, "startup", "/healthz")
	}

	// Shutdown: preStop sleep (no shell in the image), then SIGTERM and the
	// gateway's own grace, all within terminationGracePeriodSeconds.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Errorf("%s: no lifecycle.preStop.sleep", dobj)
	} else {
		if c.Lifecycle.PreStop.Exec != nil {
			t.Errorf("%s: preStop exec: the distroless image has no shell or sleep binary", dobj)
		}
		w.preStopSeconds = c.Lifecycle.PreStop.Sleep.Seconds
		if w.preStopSeconds < 5 {
			t.Errorf("%s: preStop sleeps %ds; endpoint removal needs a few seconds to reach the ingress", dobj, w.preStopSeconds)
		}
	}
	grace := w.settings.duration(t, "GATEWAY_SHUTDOWN_GRACE")
	if ps.TerminationGracePeriodSeconds == nil {
		t.Errorf("%s: no terminationGracePeriodSeconds (default 30s)", dobj)
	} else if tg := time.Duration(*ps.TerminationGracePeriodSeconds) * time.Second; tg <= time.Duration(w.preStopSeconds)*time.Second+grace {
		t.Errorf("%s: terminationGracePeriodSeconds %v ≤ preStop %ds + GATEWAY_SHUTDOWN_GRACE %v", dobj, tg, w.preStopSeconds, grace)
	}

	// Resources, sized for GATEWAY_MAX_SESSIONS.
	reqMem, err1 := bytesOf(c.Resources.Requests["memory"])
	limMem, err2 := bytesOf(c.Resources.Limits["memory"])
	cpu, err3 := milliCPU(c.Resources.Requests["cpu"])
	if err := errors.Join(err1, err2, err3); err != nil || reqMem == 0 || limMem == 0 || cpu == 0 {
		t.Errorf("%s: resources.requests.{cpu,memory} and limits.memory must be set: %v (%v)", dobj, c.Resources, err)
	} else {
		w.memLimit = limMem
		if limMem < reqMem {
			t.Errorf("%s: memory limit %d below the request %d", dobj, limMem, reqMem)
		}
		if need := int64(w.settings.int(t, "GATEWAY_MAX_SESSIONS")) * bytesPerSession; reqMem < need {
			t.Errorf("%s: memory request %d B < GATEWAY_MAX_SESSIONS × 32 KiB = %d B", dobj, reqMem, need)
		}
		if gml, ok := w.settings["GOMEMLIMIT"]; ok {
			if v, err := goBytesOf(gml); err != nil || v >= limMem || v < limMem/2 {
				t.Errorf("%s: GOMEMLIMIT %q should be a little below the memory limit %d", dobj, gml, limMem)
			}
		}
	}
	if _, ok := c.Resources.Limits["cpu"]; ok {
		t.Errorf("%s: a CPU limit throttles heartbeats and pongs; the deployment documents why it has none", dobj)
	}

	// Security.
	psc := ps.SecurityContext
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 || psc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("%s: pod securityContext must have runAsNonRoot, runAsUser 65532, seccompProfile RuntimeDefault", dobj)
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: no container securityContext", dobj)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: allowPrivilegeEscalation must be false", dobj)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s: readOnlyRootFilesystem must be true", dobj)
	case !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
		t.Errorf("%s: capabilities must drop ALL and add none", dobj)
	case sc.Privileged != nil && *sc.Privileged:
		t.Errorf("%s: privileged", dobj)
	case sc.RunAsUser != nil && *sc.RunAsUser != 65532, sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
		t.Errorf("%s: the container must run as 65532, non-root", dobj)
	}

	// Configuration: the shared cluster key from a Secret, none of the
	// variables that are gone; the embedded engine's store on a volume (the
	// root filesystem is read-only); a real upstream has a license.
	var keyFromSecret bool
	for _, e := range c.Env {
		switch e.Name {
		case "GATEWAY_CLUSTER_KEY":
			keyFromSecret = e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != ""
		case "GATEWAY_CURSOR_KEY", "GATEWAY_TICKET_KEY", "GATEWAY_ADVERTISE_ADDR":
			t.Errorf("%s: %s is no longer read (GATEWAY_CLUSTER_KEY replaces it)", dobj, e.Name)
		}
	}
	if _, literal := w.settings["GATEWAY_CLUSTER_KEY"]; literal || !keyFromSecret {
		t.Errorf("%s: GATEWAY_CLUSTER_KEY must come from a Secret (shared by all replicas, never a literal)", dobj)
	}
	checkClusterEnv(t, dobj, c, w.settings)
	if w.settings["GATEWAY_NATS_URL"] == "" {
		dir, mounted := w.settings["GATEWAY_DATA_DIR"], false
		for _, m := range c.VolumeMounts {
			mounted = mounted || (dir != "" && (dir == m.MountPath || strings.HasPrefix(dir, strings.TrimSuffix(m.MountPath, "/")+"/")))
		}
		if !mounted {
			t.Errorf("%s: the embedded engine's GATEWAY_DATA_DIR %q is on no volume (the root filesystem is read-only)", dobj, dir)
		}
	}
	if w.settings["CHATIO_URL"] != "embedded" && w.settings["CHATIO_LICENSE"] == "" {
		t.Errorf("%s: CHATIO_URL %q without CHATIO_LICENSE", dobj, w.settings["CHATIO_URL"])
	}
	if hb := w.settings.duration(t, "GATEWAY_HEARTBEAT"); hb <= 0 {
		t.Errorf("GATEWAY_HEARTBEAT %v must be positive behind a proxy with read timeouts", hb)
	}

	// Service.
	sobj := one(t, objs, "Service", "")
	var s service
	sobj.decode(t, &s)
	if a := s.Spec.SessionAffinity; a != "" && a != "None" {
		t.Errorf("%s: sessionAffinity %q: in cluster mode any pod serves any customer, round-robin", sobj, a)
	}
	if !subset(s.Spec.Selector, podLabels) || len(s.Spec.Selector) == 0 {
		t.Errorf("%s: selector %v does not select the pods %v", sobj, s.Spec.Selector, podLabels)
	}
	svcPorts := map[string]int{}
	for _, p := range s.Spec.Ports {
		svcPorts[p.Name] = p.Port
		target := 0
		switch tp := p.TargetPort.(type) {
		case int:
			target = tp
		case string:
			target = portByName[tp]
		}
		if target != w.port {
			t.Errorf("%s: port %q targets %v, not the gateway's port %d", sobj, p.Name, p.TargetPort, w.port)
		}
	}

	// HorizontalPodAutoscaler.
	hobj := one(t, objs, "HorizontalPodAutoscaler", "")
	var h hpa
	hobj.decode(t, &h)
	if r := h.Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != dobj.Metadata.Name || r.APIVersion != "apps/v1" {
		t.Errorf("%s: scaleTargetRef %+v is not the Deployment %s", hobj, r, dobj.Metadata.Name)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
		t.Errorf("%s: want 2 ≤ minReplicas ≤ maxReplicas", hobj)
	} else {
		w.minReplicas = *h.Spec.MinReplicas
	}
	resources := map[string]bool{}
	for _, m := range h.Spec.Metrics {
		if m.Type == "Resource" && m.Resource != nil && m.Resource.Target.Type == "Utilization" &&
			m.Resource.Target.AverageUtilization > 0 && m.Resource.Target.AverageUtilization <= 100 {
			resources[m.Resource.Name] = true
		}
	}
	if !resources["cpu"] && !resources["memory"] {
		t.Errorf("%s: no CPU or memory utilization target", hobj)
	}
	if b := h.Spec.Behavior; b == nil || b.ScaleDown == nil || b.ScaleDown.StabilizationWindowSeconds == nil || *b.ScaleDown.StabilizationWindowSeconds < 300 {
		t.Errorf("%s: scale-down must be slow (stabilizationWindowSeconds ≥ 300): each removed pod moves its customers", hobj)
	}

	// PodDisruptionBudget.
	pobj := one(t, objs, "PodDisruptionBudget", "")
	var p pdb
	pobj.decode(t, &p)
	if !sameLabels(p.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("%s: selector %v differs from the Deployment's %v", pobj, p.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels)
	}
	if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
		t.Errorf("%s: set exactly one of minAvailable and maxUnavailable", pobj)
	}
	if n, ok := p.Spec.MinAvailable.(int); ok && n >= w.minReplicas {
		t.Errorf("%s: minAvailable %d ≥ minReplicas %d blocks every drain", pobj, n, w.minReplicas)
	}

	// Ingress (ingress-nginx).
	iobj := one(t, objs, "Ingress", "")
	var ing ingress
	iobj.decode(t, &ing)
	an := iobj.Metadata.Annotations
	const pfx = "nginx.ingress.kubernetes.io/"
	// Round-robin: no consistent hash, no affinity cookie (cluster mode:
	// any pod serves any customer).
	for k, v := range an {
		if name, ok := strings.CutPrefix(k, pfx); ok && (strings.HasPrefix(name, "upstream-hash-by") || name == "affinity" || name == "affinity-mode" || strings.HasPrefix(name, "session-cookie")) {
			t.Errorf("%s: %s = %q: cluster mode balances round-robin, no hash or affinity", iobj, k, v)
		}
	}
	if lb := an[pfx+"load-balance"]; lb != "" && lb != "round_robin" {
		t.Errorf("%s: load-balance %q, want round_robin", iobj, lb)
	}
	for k, want := range map[string]string{"proxy-buffering": "off", "proxy-http-version": "1.1"} {
		if an[pfx+k] != want {
			t.Errorf("%s: %s%s = %q, want %q", iobj, pfx, k, an[pfx+k], want)
		}
	}
	if an[pfx+"service-upstream"] == "true" {
		t.Errorf("%s: service-upstream \"true\" sends traffic to the ClusterIP: nginx no longer retries another pod nor sees a pod leave", iobj)
	}
	hb := w.settings.duration(t, "GATEWAY_HEARTBEAT")
	for _, k := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
		n, err := strconv.Atoi(an[pfx+k])
		if err != nil || n < 3600 {
			t.Errorf("%s: %s%s = %q, want ≥ 3600 (seconds)", iobj, pfx, k, an[pfx+k])
		}
		if time.Duration(n)*time.Second <= 2*hb {
			t.Errorf("%s: %s %ds is not well above GATEWAY_HEARTBEAT %v", iobj, k, n, hb)
		}
	}
	if body, err := bytesOf(strings.Replace(an[pfx+"proxy-body-size"], "m", "M", 1)); err != nil || body < 10<<20 {
		t.Errorf("%s: proxy-body-size %q must admit 10 MiB file uploads (nginx's default is 1m)", iobj, an[pfx+"proxy-body-size"])
	}
	if ing.Spec.IngressClassName != "nginx" {
		t.Errorf("%s: ingressClassName %q, want nginx (the annotations are ingress-nginx's)", iobj, ing.Spec.IngressClassName)
	}
	var routesV1 bool
	for _, r := range ing.Spec.Rules {
		if r.Host == "" {
			t.Errorf("%s: a rule without host", iobj)
		}
		for _, p := range r.HTTP.Paths {
			b := p.Backend.Service
			if b.Name != sobj.Metadata.Name {
				t.Errorf("%s: path %s goes to service %q, not %q", iobj, p.Path, b.Name, sobj.Metadata.Name)
			}
			if _, ok := svcPorts[b.Port.Name]; !ok && !slices.Contains(mapValues(svcPorts), b.Port.Number) {
				t.Errorf("%s: path %s: service port %+v does not exist", iobj, p.Path, b.Port)
			}
			if p.Path == "/v1" && p.PathType == "Prefix" {
				routesV1 = true
			}
			for _, internal := range []string{"/metrics", "/healthz", "/readyz"} {
				if pathMatches(p.Path, p.PathType, internal) {
					t.Errorf("%s: path %s (%s) exposes %s publicly", iobj, p.Path, p.PathType, internal)
				}
			}
		}
	}
	if !routesV1 {
		t.Errorf("%s: no Prefix /v1 path", iobj)
	}
	return w
}

// pathMatches reports whether an Ingress path of pathType matches path.
func pathMatches(ipath, pathType, path string) bool {
	if pathType == "Exact" {
		return ipath == path
	}
	p := strings.TrimSuffix(ipath, "/")
	return p == "" || path == p || strings.HasPrefix(path, p+"/")
}

func subset(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sameLabels(a, b map[string]string) bool { return len(a) == len(b) && subset(a, b) }

func mapValues(m map[string]int) []int {
	var vs []int
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

// ---- tests ----

func TestBase(t *testing.T) {
	objs := baseObjects(t)
	w := checkWorkload(t, objs)
	if w.settings["CHATIO_URL"] != "embedded" {
		t.Logf("base upstream: %s", w.settings["CHATIO_URL"])
	}
}

// TestKustomizations checks that the base lists every manifest beside it,
// and that the overlay builds on the base, patches only what the base has,
// and references every file beside it.
func TestKustomizations(t *testing.T) {
	k := readKustomization(t, "base")
	entries, err := os.ReadDir("base")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) && n != "kustomization.yaml" {
			files = append(files, n)
		}
	}
	slices.Sort(files)
	listed := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(files, listed) {
		t.Errorf("base/kustomization.yaml resources %v, files %v", listed, files)
	}
	for _, want := range []string{"deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "ingress.yaml"} {
		if !slices.Contains(files, want) {
			t.Errorf("base: no %s", want)
		}
	}

	base := baseObjects(t)
	var d deployment
	one(t, base, "Deployment", "").decode(t, &d)
	baseImage, _, _ := strings.Cut(d.Spec.Template.Spec.Containers[0].Image, ":")

	dir := filepath.Join("overlays", "example")
	ok := readKustomization(t, dir)
	if !slices.Contains(ok.Resources, "../../base") {
		t.Errorf("%s: resources %v do not include ../../base", dir, ok.Resources)
	}
	if len(ok.PatchesStrategicMerge) > 0 {
		t.Errorf("%s: patchesStrategicMerge is deprecated; use patches", dir)
	}
	referenced := map[string]bool{"kustomization.yaml": true}
	for _, r := range ok.Resources {
		if !strings.HasPrefix(r, "../") {
			referenced[r] = true
		}
	}
	for _, p := range ok.Patches {
		if p.Path == "" {
			t.Errorf("%s: an inline patch; keep patches in files", dir)
			continue
		}
		referenced[p.Path] = true
		for _, po := range readFileObjects(t, filepath.Join(dir, p.Path)) {
			found := false
			for _, b := range base {
				found = found || (b.Kind == po.Kind && b.Metadata.Name == po.Metadata.Name && b.APIVersion == po.APIVersion)
			}
			if !found {
				t.Errorf("%s: patches %s, which the base does not have", dir, po)
			}
		}
	}
	var imageSet bool
	for _, im := range ok.Images {
		imageSet = imageSet || (im.Name == baseImage && im.NewName != "" && im.NewTag != "" && im.NewTag != "latest")
	}
	if !imageSet {
		t.Errorf("%s: images must pin %q to a registry and a tag", dir, baseImage)
	}
	entries, err = os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && !referenced[e.Name()] {
			t.Errorf("%s: %s is not referenced by kustomization.yaml", dir, e.Name())
		}
	}
}

// TestKustomizeBuild renders the base and the overlay with kubectl (when it
// is installed; it needs no cluster) and checks the rendered objects.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed: rendered manifests not checked (the source files are)")
	}
	render := func(dir string) []object {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, kubectl, "kustomize", dir)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
		}
		return readObjects(t, "kustomize "+dir, out)
	}
	base := checkWorkload(t, render("base"))

	overlayObjs := render(filepath.Join("overlays", "example"))
	ov := checkWorkload(t, overlayObjs)
	for _, o := range overlayObjs {
		if o.Metadata.Namespace == "" {
			t.Errorf("%s: the overlay leaves it without namespace", o)
		}
	}
	if ov.settings["CHATIO_URL"] == "embedded" || !strings.HasPrefix(ov.settings["CHATIO_URL"], "wss://") {
		t.Errorf("overlay: CHATIO_URL %q, want a real wss:// upstream", ov.settings["CHATIO_URL"])
	}
	if ov.minReplicas <= base.minReplicas {
		t.Errorf("overlay: minReplicas %d, want more than the base's %d", ov.minReplicas, base.minReplicas)
	}
	var d deployment
	one(t, overlayObjs, "Deployment", "").decode(t, &d)
	if img := d.Spec.Template.Spec.Containers[0].Image; !strings.Contains(img, "/") || strings.HasSuffix(img, ":latest") {
		t.Errorf("overlay: image %q, want a registry path with a pinned tag", img)
	}
}

// dockerfile is the Dockerfile's instructions, continuation lines joined.
type instruction struct{ cmd, args string }

func readDockerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := readDockerfile(t)
	var stages []string
	var final []instruction // the instructions of the last stage
	var buildCmd string
	for _, in := range ins {
		switch in.cmd {
		case "FROM":
			stages = append(stages, in.args)
			final = nil
		case "RUN":
			if strings.Contains(in.args, "go build") {
				buildCmd = in.args
			}
		}
		final = append(final, in)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a multi-stage build", len(stages))
	}
	if !regexp.MustCompile(`(?i)\bAS\s+build\b`).MatchString(stages[0]) || !strings.Contains(stages[0], "golang:") {
		t.Errorf("Dockerfile: first stage %q, want a golang image named build", stages[0])
	}
	if last := stages[len(stages)-1]; last != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("Dockerfile: runtime stage %q, want gcr.io/distroless/static-debian12:nonroot", last)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w `, "./cmd/gateway"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("Dockerfile: the go build command %q lacks %s", buildCmd, want)
		}
	}
	checkVersionFlags(t, ins, buildCmd)
	has := func(cmd, args string) bool {
		return slices.ContainsFunc(final, func(in instruction) bool { return in.cmd == cmd && in.args == args })
	}
	base := checkWorkloadQuiet(t)
	for _, want := range []instruction{
		{"USER", "65532:65532"},
		{"EXPOSE", strconv.Itoa(base.port)},
		{"ENTRYPOINT", `["/gateway"]`},
	} {
		if !has(want.cmd, want.args) {
			t.Errorf("Dockerfile: runtime stage lacks %s %s", want.cmd, want.args)
		}
	}
	var healthcheck, copied bool
	for _, in := range final {
		if in.cmd == "HEALTHCHECK" {
			healthcheck = strings.HasSuffix(in.args, `CMD ["/gateway", "healthcheck"]`)
		}
		if in.cmd == "COPY" && strings.HasPrefix(in.args, "--from=build ") && strings.HasSuffix(in.args, " /gateway") {
			copied = true
		}
	}
	if !healthcheck {
		t.Error(`Dockerfile: want HEALTHCHECK … CMD ["/gateway", "healthcheck"] (exec form: no shell in the image)`)
	}
	if !copied {
		t.Error("Dockerfile: the runtime stage must COPY --from=build … /gateway")
	}
	// The healthcheck subcommand exists.
	src, err := os.ReadFile("../cmd/gateway/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `case "healthcheck":`) {
		t.Error("cmd/gateway has no healthcheck subcommand any more")
	}
}

// checkVersionFlags: the build stage takes the build args VERSION and
// REVISION and links them into variables cmd/gateway declares (-X on a
// variable that does not exist is silently ignored).
func checkVersionFlags(t *testing.T, ins []instruction, buildCmd string) {
	t.Helper()
	args := map[string]bool{}
	stage := 0
	for _, in := range ins {
		if in.cmd == "FROM" {
			stage++
		}
		if in.cmd == "ARG" && stage == 1 { // the build stage's
			for _, f := range strings.Fields(in.args) {
				name, _, _ := strings.Cut(f, "=")
				args[name] = true
			}
		}
	}
	declared := map[string]bool{}
	srcs, err := filepath.Glob("../cmd/gateway/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range srcs {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, sp := range g.Specs {
					for _, n := range sp.(*ast.ValueSpec).Names {
						declared[n.Name] = true
					}
				}
			}
		}
	}
	for arg, v := range map[string]string{"VERSION": "version", "REVISION": "revision"} {
		if !args[arg] {
			t.Errorf("Dockerfile: the build stage has no ARG %s", arg)
		}
		if flag := "-X main." + v + "=${" + arg + "}"; !strings.Contains(buildCmd, flag) {
			t.Errorf("Dockerfile: the go build command %q lacks %s", buildCmd, flag)
		}
		if !declared[v] {
			t.Errorf("cmd/gateway declares no package variable %s for -X main.%s", v, v)
		}
	}
}

// checkWorkloadQuiet is the base's workload (its checks are TestBase's).
func checkWorkloadQuiet(t *testing.T) workload {
	t.Helper()
	objs := baseObjects(t)
	var d deployment
	one(t, objs, "Deployment", "").decode(t, &d)
	s := settingsOf(t, objs, d.Spec.Template.Spec.Containers[0])
	var limit int64
	limit, _ = bytesOf(d.Spec.Template.Spec.Containers[0].Resources.Limits["memory"])
	return workload{settings: s, port: s.port(t), memLimit: limit}
}

// TestDockerignore: the build context keeps what the build embeds.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	if !slices.Contains(patterns, ".git") {
		t.Error(".dockerignore: .git is not excluded")
	}
	needed := []string{"go.mod", "go.sum", "cmd/gateway/main.go", "internal/httpapi/server.go", "api/openapi.yaml", "web/static/index.html", "web/static/docs/index.html"}
	for _, path := range needed {
		for _, p := range patterns {
			if strings.HasPrefix(p, "!") {
				continue
			}
			if ignored(p, path) {
				t.Errorf(".dockerignore: %q excludes %s, which the build needs", p, path)
			}
		}
	}
}

// ignored approximates Docker's matching: a pattern matches a path or one
// of its parent directories; "**/" matches any number of directories.
func ignored(pattern, path string) bool {
	parts := strings.Split(path, "/")
	for i := 1; i <= len(parts); i++ {
		prefix := strings.Join(parts[:i], "/")
		if m, _ := filepath.Match(pattern, prefix); m {
			return true
		}
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			for j := 0; j < i; j++ {
				if m, _ := filepath.Match(rest, strings.Join(parts[j:i], "/")); m {
					return true
				}
			}
		}
	}
	return false
}

func TestIgnoredMatcher(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{".git", ".git/HEAD", true},
		{"deploy", "deploy/base/x.yaml", true},
		{"**/testdata", "internal/chatio/testdata/fuzz/a", true},
		{"**/*_test.go", "internal/httpapi/rest_test.go", true},
		{"*.md", "README.md", true},
		{"*.md", "cmd/chatio-sim/README.md", false},
		{"docs", "web/static/docs/index.html", false},
	} {
		if got := ignored(c.pattern, c.path); got != c.want {
			t.Errorf("ignored(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

// TestNginxExample checks deploy/nginx/gateway.conf against the Ingress:
// round-robin with no affinity, streams unbuffered with long timeouts, keep-alive
// HTTP/1.1 to the gateways, uploads admitted, internal routes hidden.
func TestNginxExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("nginx", "gateway.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range strings.Split(string(data), "\n") { // comments out
		l, _, _ = strings.Cut(l, "#")
		b.WriteString(l + "\n")
	}
	conf := b.String()
	w := checkWorkloadQuiet(t)
	// Round-robin, as the Ingress: no hash, ip_hash, sticky or random
	// balancing (cluster mode: any server serves any customer).
	up := regexp.MustCompile(`upstream\s+\w+\s*\{([^}]*)\}`).FindStringSubmatch(conf)
	if up == nil {
		t.Fatal("nginx: no upstream { … }")
	}
	if m := regexp.MustCompile(`(?m)^\s*(hash|ip_hash|sticky|random|least_conn)\b[^;]*;`).FindStringSubmatch(up[1]); m != nil {
		t.Errorf("nginx: the upstream balances with %q: cluster mode balances round-robin, with no affinity", strings.TrimSpace(m[0]))
	}
	servers := regexp.MustCompile(`(?m)^\s*server\s+[^\s;]+:(\d+)`).FindAllStringSubmatch(conf, -1)
	if len(servers) < 2 {
		t.Errorf("nginx: %d upstream servers, want several", len(servers))
	}
	for _, s := range servers {
		if s[1] != strconv.Itoa(w.port) {
			t.Errorf("nginx: upstream server port %s, the gateway listens on %d", s[1], w.port)
		}
	}
	for _, re := range []string{
		`(?m)^\s*proxy_http_version\s+1\.1\s*;`,
		`(?m)^\s*proxy_set_header\s+Connection\s+""\s*;`,
		`(?m)^\s*keepalive\s+\d+\s*;`,
	} {
		if !regexp.MustCompile(re).MatchString(conf) {
			t.Errorf("nginx: no match for %s", re)
		}
	}
	if m := regexp.MustCompile(`(?m)^\s*client_max_body_size\s+(\d+)m\s*;`).FindStringSubmatch(conf); m == nil {
		t.Error("nginx: no client_max_body_size (default 1m refuses 10 MiB uploads)")
	} else if n, _ := strconv.Atoi(m[1]); n < 11 {
		t.Errorf("nginx: client_max_body_size %sm < 11m", m[1])
	}
	stream := regexp.MustCompile(`location\s+=\s+/v1/events\s*\{([^}]*)\}`).FindStringSubmatch(conf)
	if stream == nil {
		t.Fatal("nginx: no `location = /v1/events { … }`")
	}
	for _, re := range []string{`proxy_buffering\s+off\s*;`, `proxy_pass\s+http://`} {
		if !regexp.MustCompile(re).MatchString(stream[1]) {
			t.Errorf("nginx: /v1/events location lacks %s", re)
		}
	}
	for _, k := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		m := regexp.MustCompile(k + `\s+(\d+)s?\s*;`).FindStringSubmatch(stream[1])
		if m == nil {
			t.Errorf("nginx: /v1/events location has no %s", k)
		} else if n, _ := strconv.Atoi(m[1]); n < 3600 {
			t.Errorf("nginx: /v1/events %s %ss < 3600s", k, m[1])
		}
	}
	for _, internal := range []string{"/metrics", "/healthz", "/readyz"} {
		if !regexp.MustCompile(`location\s+=\s+` + regexp.QuoteMeta(internal) + `\s*\{\s*return\s+404\s*;`).MatchString(conf) {
			t.Errorf("nginx: %s is not kept internal (location = %s { return 404; })", internal, internal)
		}
	}
}

// TestTicketAffinityDocumented: the ticket limitation is explained where an
// operator looks (Ingress, nginx example, the docs).
func TestTicketAffinityDocumented(t *testing.T) {
	for _, f := range []string{"base/ingress.yaml", "nginx/gateway.conf", "../README.md"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "?ticket=") || !strings.Contains(string(data), "Stream tickets and several replicas") {
			t.Errorf("%s: does not explain how ?ticket= streams and affinity interact", f)
		}
	}
}

// checkClusterEnv: the gateway runs in cluster mode on the NATS release of
// deploy/nats (GATEWAY_NATS_URL at its client Service), named in the engine
// by its pod name (GATEWAY_NODE_ID from metadata.name: unique per replica),
// with engine settings cmd/gateway accepts.
func checkClusterEnv(t *testing.T, dobj object, c container, s settings) {
	t.Helper()
	natsURL := s["GATEWAY_NATS_URL"]
	if natsURL == "" {
		t.Errorf("%s: no GATEWAY_NATS_URL: each pod would run its own embedded engine, and the pods would not share customers", dobj)
	}
	for u := range strings.SplitSeq(natsURL, ",") {
		if u == "" {
			continue
		}
		scheme, hostPort, ok := strings.Cut(u, "://")
		host, port, err := net.SplitHostPort(hostPort)
		if !ok || (scheme != "nats" && scheme != "tls") || err != nil {
			t.Errorf("%s: GATEWAY_NATS_URL %q: want nats://host:port", dobj, u)
			continue
		}
		if label, _, _ := strings.Cut(host, "."); label != natsRelease || port != "4222" {
			t.Errorf("%s: GATEWAY_NATS_URL %q is not the client Service of the Helm release %q (deploy/nats): want %s:4222", dobj, u, natsRelease, natsRelease)
		}
	}
	var fromPod bool
	for _, e := range c.Env {
		if e.Name == "GATEWAY_NODE_ID" {
			fromPod = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
		}
	}
	if _, literal := s["GATEWAY_NODE_ID"]; literal || !fromPod {
		t.Errorf("%s: GATEWAY_NODE_ID must come from the pod's name (fieldRef metadata.name): unique per replica", dobj)
	}
	if v, ok := s["GATEWAY_LEASE_TTL"]; ok {
		if d, err := time.ParseDuration(v); err != nil || d < 300*time.Millisecond {
			t.Errorf("%s: GATEWAY_LEASE_TTL %q: want a duration ≥ 300ms", dobj, v)
		}
	}
	if v, ok := s["GATEWAY_LOG_STREAMS"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 1024 {
			t.Errorf("%s: GATEWAY_LOG_STREAMS %q: want 1 to 1024", dobj, v)
		}
	}
	if v, ok := s["GATEWAY_STREAM_REPLICAS"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 5 {
			t.Errorf("%s: GATEWAY_STREAM_REPLICAS %q: want 0 to 5", dobj, v)
		}
	}
}

// natsRelease is the Helm release of deploy/nats/values.yaml (README
// "Deploy": helm upgrade --install nats nats/nats …): its client Service.
const natsRelease = "nats"

// natsValues: the fields of the nats/nats chart's values the kit sets.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `yaml:"enabled"`
			Replicas int  `yaml:"replicas"`
		} `yaml:"cluster"`
		JetStream struct {
			Enabled   bool `yaml:"enabled"`
			FileStore struct {
				Enabled *bool  `yaml:"enabled"`
				Dir     string `yaml:"dir"`
				PVC     struct {
					Enabled *bool  `yaml:"enabled"`
					Size    string `yaml:"size"`
				} `yaml:"pvc"`
			} `yaml:"fileStore"`
			MemoryStore struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"memoryStore"`
		} `yaml:"jetstream"`
	} `yaml:"config"`
	PodTemplate struct {
		TopologySpreadConstraints map[string]struct {
			MaxSkew           int    `yaml:"maxSkew"`
			WhenUnsatisfiable string `yaml:"whenUnsatisfiable"`
		} `yaml:"topologySpreadConstraints"`
		Merge struct {
			Spec struct {
				Affinity struct {
					PodAntiAffinity struct {
						Required []struct {
							TopologyKey   string   `yaml:"topologyKey"`
							LabelSelector selector `yaml:"labelSelector"`
						} `yaml:"requiredDuringSchedulingIgnoredDuringExecution"`
					} `yaml:"podAntiAffinity"`
				} `yaml:"affinity"`
			} `yaml:"spec"`
		} `yaml:"merge"`
	} `yaml:"podTemplate"`
	Container struct {
		Merge struct {
			Resources struct {
				Requests map[string]string `yaml:"requests"`
				Limits   map[string]string `yaml:"limits"`
			} `yaml:"resources"`
		} `yaml:"merge"`
	} `yaml:"container"`
}

// TestNATSValues checks deploy/nats/values.yaml, the engine the gateway is
// deployed with: three servers (R3 survives one lost), JetStream on a file
// store on a PersistentVolumeClaim big enough for the gateway's log
// streams, one server per node, resources set; and that the README and the
// base point at it the same way.
func TestNATSValues(t *testing.T) {
	path := filepath.Join("nats", "values.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v natsValues
	// Top-level keys of the chart's values (a typo is silently ignored by helm).
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for k := range top {
		if !slices.Contains([]string{"config", "podTemplate", "container", "podDisruptionBudget", "natsBox", "service", "statefulSet", "promExporter", "reloader", "global"}, k) {
			t.Errorf("%s: top-level key %q is not one of the nats/nats chart's the kit uses", path, k)
		}
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	cl, js := v.Config.Cluster, v.Config.JetStream
	if !cl.Enabled || cl.Replicas != 3 {
		t.Errorf("%s: config.cluster enabled %v replicas %d, want a cluster of 3 (R3 survives one lost server)", path, cl.Enabled, cl.Replicas)
	}
	fs := js.FileStore
	if !js.Enabled || (fs.Enabled != nil && !*fs.Enabled) || js.MemoryStore.Enabled {
		t.Errorf("%s: want JetStream with the file store (not memory): the log must survive a server restart", path)
	}
	if fs.PVC.Enabled != nil && !*fs.PVC.Enabled || fs.PVC.Size == "" {
		t.Errorf("%s: the file store must be on a PersistentVolumeClaim with a size", path)
	} else if size, err := bytesOf(fs.PVC.Size); err != nil {
		t.Errorf("%s: pvc size %q: %v", path, fs.PVC.Size, err)
	} else {
		// Every server holds a copy of every log stream (R3 on 3 servers).
		w := checkWorkloadQuiet(t)
		streams, maxBytes := 4, int64(1<<30) // cmd/gateway defaults
		if n, ok := w.settings["GATEWAY_LOG_STREAMS"]; ok {
			streams, _ = strconv.Atoi(n)
		}
		if n, ok := w.settings["GATEWAY_LOG_MAX_BYTES"]; ok {
			maxBytes, _ = strconv.ParseInt(n, 10, 64)
		}
		if need := int64(streams) * maxBytes; size < need*5/4 {
			t.Errorf("%s: pvc size %s < GATEWAY_LOG_STREAMS × GATEWAY_LOG_MAX_BYTES (%d B) with a quarter to spare", path, fs.PVC.Size, need)
		}
	}
	if tsc, ok := v.PodTemplate.TopologySpreadConstraints["kubernetes.io/hostname"]; !ok || tsc.MaxSkew != 1 || tsc.WhenUnsatisfiable != "DoNotSchedule" {
		t.Errorf("%s: want podTemplate.topologySpreadConstraints on kubernetes.io/hostname, maxSkew 1, DoNotSchedule", path)
	}
	var anti bool
	for _, r := range v.PodTemplate.Merge.Spec.Affinity.PodAntiAffinity.Required {
		anti = anti || (r.TopologyKey == "kubernetes.io/hostname" && r.LabelSelector.MatchLabels["app.kubernetes.io/instance"] == natsRelease)
	}
	if !anti {
		t.Errorf("%s: want a required podAntiAffinity on kubernetes.io/hostname selecting the release %q", path, natsRelease)
	}
	res := v.Container.Merge.Resources
	if _, err := milliCPU(res.Requests["cpu"]); err != nil || res.Requests["cpu"] == "" || res.Requests["memory"] == "" || res.Limits["memory"] == "" {
		t.Errorf("%s: container.merge.resources: want cpu and memory requests and a memory limit, got %+v", path, res)
	}
	if _, ok := res.Limits["cpu"]; ok {
		t.Errorf("%s: a CPU limit throttles the server (missed Raft heartbeats, lost leadership)", path)
	}
	// The install command names the release the gateway connects to.
	install := "helm upgrade --install " + natsRelease + " nats/nats"
	for _, f := range []string{"../README.md", path} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), install) || !strings.Contains(string(b), "deploy/nats/values.yaml") {
			t.Errorf("%s: does not say how to install the engine (%s … -f deploy/nats/values.yaml)", f, install)
		}
	}
}
