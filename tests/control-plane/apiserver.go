package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/rest"
	basecompatibility "k8s.io/component-base/compatibility"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

const (
	serviceCIDR = "10.96.0.0/16"
	serviceIP   = "10.96.0.1" // first address of serviceCIDR: the "kubernetes" Service
)

const auditPolicy = `# Written by nspool-control-plane: one line per request, at Metadata level
# (verb, user, namespace, resource, name, response code; no bodies).
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

type apiServerConfig struct {
	listener    net.Listener
	port        int
	etcdURL     string
	pki         *pki
	certDir     string
	auditLog    string
	auditPolicy string
	verbosity   int
	extraArgs   []string
}

// apiServerArgs are the kube-apiserver flags, in the form the real binary
// takes them, so that --apiserver-arg can override any of them.
func apiServerArgs(c apiServerConfig) []string {
	args := []string{
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(c.port),
		// no default route on some CI machines: without this the server
		// refuses to pick an address to advertise.
		"--advertise-address=127.0.0.1",
		"--cert-dir=" + c.certDir,
		"--tls-cert-file=" + c.pki.servingCertFile,
		"--tls-private-key-file=" + c.pki.servingKeyFile,
		"--client-ca-file=" + c.pki.caFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-key-file=" + c.pki.saKeyFile,
		"--service-account-signing-key-file=" + c.pki.saKeyFile,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--etcd-servers=" + c.etcdURL,
		"--service-cluster-ip-range=" + serviceCIDR,
		// 127.0.0.1 is not a valid Endpoints address: keep the apiserver from
		// trying (and logging about it) every 10 s.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--audit-log-path=" + c.auditLog,
		"--audit-policy-file=" + c.auditPolicy,
		"--audit-log-mode=blocking", // line is on disk before the response is sent
		"--audit-log-maxbackup=0",
		"--profiling=false",
		"--v=" + strconv.Itoa(c.verbosity),
	}
	return append(args, c.extraArgs...)
}

// runAPIServer configures kube-apiserver from args and starts it; the
// returned channel yields Run's result once ctx is cancelled (or on failure).
func runAPIServer(ctx context.Context, ln net.Listener, args []string) (<-chan error, error) {
	s := options.NewServerRunOptions()
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	for _, f := range s.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("kube-apiserver flags: %w", err)
	}
	s.SecureServing.Listener = ln
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	featureGate := s.GenericServerRunOptions.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)
	if err := logsapi.ValidateAndApply(s.Logs, featureGate); err != nil {
		return nil, err
	}
	// loopback clients would log warnings about their own requests
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, err
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, utilerrors.NewAggregate(errs)
	}
	errCh := make(chan error, 1)
	go func() {
		errCh <- app.Run(ctx, completed)
	}()
	return errCh, nil
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
