// nspool-control-plane runs a throw-away Kubernetes control plane for tests:
// etcd, the real kube-apiserver and the few controllers tests depend on, all
// in this one process, built from the Kubernetes Go modules.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

var errOut io.Writer = os.Stderr // the terminal's stderr, even after redirectStderr

func say(format string, a ...any) { fmt.Fprintf(os.Stdout, format+"\n", a...) }

func main() {
	os.Exit(run())
}

func run() int {
	var (
		kubeconfig   = flag.String("kubeconfig", "", "write the admin kubeconfig here once the control plane is ready (required)")
		dataDir      = flag.String("data-dir", "", "keep etcd data, certificates and logs here (default: a temp dir, removed on exit); a dir an earlier run left is restarted: same certificates, keys and objects")
		port         = flag.Int("port", 0, "API server port on 127.0.0.1 (default: a free port)")
		auditLog     = flag.String("audit-log", "", "API server audit log, one JSON line per request (default: DATA/audit.log)")
		logFile      = flag.String("log", "", "log file for kube-apiserver, etcd and controllers (default: DATA/control-plane.log)")
		verbosity    = flag.Int("v", 0, "kube-apiserver/klog log verbosity")
		stdinEOF     = flag.Bool("exit-on-stdin-eof", false, "stop when stdin reaches EOF (e.g. when the parent process dies)")
		readyTimeout = flag.Duration("ready-timeout", 2*time.Minute, "give up if not ready within this time")
		showVersion  = flag.Bool("version", false, "print the Kubernetes version and exit")
		extra        stringList
	)
	flag.Var(&extra, "apiserver-arg", "extra kube-apiserver flag, e.g. --apiserver-arg=--feature-gates=X=true (repeatable)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: nspool-control-plane --kubeconfig PATH [flags]\n\n"+
			"Runs etcd, kube-apiserver %s and the serviceaccount, root-ca-cert-publisher,\n"+
			"namespace, clusterrole-aggregation and garbage-collector controllers in this\n"+
			"process until SIGINT/SIGTERM (or stdin EOF with --exit-on-stdin-eof).\n\n", version.Get().GitVersion)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *showVersion {
		say("%s", version.Get().GitVersion)
		return 0
	}
	if *kubeconfig == "" || flag.NArg() > 0 {
		flag.Usage()
		return 2
	}
	started := time.Now()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(errOut, "nspool-control-plane: "+format+"\n", a...)
		return 1
	}

	kcPath, err := filepath.Abs(*kubeconfig)
	if err != nil {
		return fail("%v", err)
	}
	// A kubeconfig from an earlier run must not look like "ready".
	if err := os.Remove(kcPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail("remove old kubeconfig: %v", err)
	}

	dir := *dataDir
	removeDir := false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "nspool-control-plane-"); err != nil {
			return fail("%v", err)
		}
		removeDir = true
	} else if dir, err = filepath.Abs(dir); err != nil {
		return fail("%v", err)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail("%v", err)
	}
	cleanup := func() {
		os.Remove(kcPath)
		if removeDir {
			os.RemoveAll(dir)
		}
	}
	defer cleanup()
	if *logFile == "" {
		*logFile = filepath.Join(dir, "control-plane.log")
	}
	if *auditLog == "" {
		*auditLog = filepath.Join(dir, "audit.log")
	}
	for _, p := range []*string{logFile, auditLog} {
		if *p, err = filepath.Abs(*p); err != nil {
			return fail("%v", err)
		}
	}
	if err := redirectStderr(*logFile); err != nil {
		return fail("log file: %v", err)
	}
	if removeDir && strings.HasPrefix(*logFile, dir+string(filepath.Separator)) {
		// The log goes away with the temp dir: show its end on failure.
		fail = func(format string, a ...any) int {
			fmt.Fprintf(errOut, "nspool-control-plane: "+format+"\n", a...)
			if data, err := os.ReadFile(*logFile); err == nil {
				lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
				if len(lines) > 30 {
					lines = lines[len(lines)-30:]
				}
				fmt.Fprintf(errOut, "--- last lines of %s (removed on exit):\n%s\n", *logFile, strings.Join(lines, "\n"))
			}
			return 1
		}
	}

	// Stop on the first SIGINT/SIGTERM (or stdin EOF); a second signal
	// exits at once.
	stop := make(chan string, 4)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		stop <- s.String()
		<-sigs
		fmt.Fprintln(errOut, "nspool-control-plane: second signal, exiting now")
		cleanup()
		os.Exit(1)
	}()
	if *stdinEOF {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			stop <- "stdin EOF"
		}()
	}

	p, err := loadOrMakePKI(filepath.Join(dir, "pki"), net.ParseIP(serviceIP))
	if err != nil {
		return fail("certificates: %v", err)
	}
	policyFile := filepath.Join(dir, "audit-policy.yaml")
	if err := writeFile(policyFile, auditPolicy); err != nil {
		return fail("%v", err)
	}

	etcd, etcdURL, err := startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		return fail("%v (log: %s)", err, *logFile)
	}
	closeEtcd := sync.OnceFunc(etcd.Close) // a second Close blocks
	defer closeEtcd()

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		return fail("API server port: %v", err)
	}
	apiPort := ln.Addr().(*net.TCPAddr).Port
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	say("starting kube-apiserver %s on %s (etcd %s, data %s, log %s, audit log %s)",
		version.Get().GitVersion, server, etcdURL, dir, *logFile, *auditLog)

	apiCtx, stopAPI := context.WithCancel(context.Background())
	defer stopAPI()
	apiDone, err := runAPIServer(apiCtx, ln, apiServerArgs(apiServerConfig{
		port: apiPort, etcdURL: etcdURL, pki: p, certDir: filepath.Join(dir, "pki"),
		auditLog: *auditLog, auditPolicy: policyFile, verbosity: *verbosity, extraArgs: extra,
	}))
	if err != nil {
		ln.Close()
		return fail("kube-apiserver: %v", err)
	}

	admin := &rest.Config{
		Host: server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: p.caPEM, CertData: p.adminCertPEM, KeyData: p.adminKey,
		},
		QPS: 100, Burst: 200, UserAgent: "nspool-control-plane",
	}
	ctlCtx, stopCtl := context.WithCancel(context.Background())
	waitCtl := func() {}
	// shutdown stops the controllers, then the API server; etcd is closed
	// by the defer above.
	shutdown := func(why string) int {
		say("stopping (%s)", why)
		t0 := time.Now()
		stopCtl()
		waitCtl()
		stopAPI()
		select {
		case err := <-apiDone:
			if err != nil {
				fmt.Fprintf(errOut, "nspool-control-plane: kube-apiserver stopped with: %v\n", err)
			}
		case <-time.After(30 * time.Second):
			fmt.Fprintln(errOut, "nspool-control-plane: kube-apiserver did not stop within 30s")
			return 1
		}
		closeEtcd()
		klog.Flush()
		say("stopped in %.1f s", time.Since(t0).Seconds())
		return 0
	}

	// Wait for readiness, while still reacting to signals and failures.
	readyCtx, cancelReady := context.WithTimeout(ctlCtx, *readyTimeout)
	readyErr := make(chan error, 1)
	go func() {
		var err error
		waitCtl, err = waitReady(readyCtx, admin, p, ctlCtx)
		readyErr <- err
	}()
	select {
	case why := <-stop:
		cancelReady()
		<-readyErr
		return shutdown(why)
	case err := <-apiDone:
		cancelReady()
		stopCtl()
		return fail("kube-apiserver exited: %v (log: %s)", err, *logFile)
	case err := <-readyErr:
		cancelReady()
		if err != nil {
			shutdown("not ready")
			return fail("not ready: %v (log: %s)", err, *logFile)
		}
	}

	if err := writeKubeconfig(kcPath, server, p); err != nil {
		shutdown("kubeconfig failed")
		return fail("write kubeconfig: %v", err)
	}
	say("ready: kubeconfig written to %s (API server %s, started in %.1f s)",
		kcPath, server, time.Since(started).Seconds())

	select {
	case why := <-stop:
		return shutdown(why)
	case err := <-apiDone:
		stopCtl()
		return fail("kube-apiserver exited: %v (log: %s)", err, *logFile)
	}
}

// waitReady waits for /readyz, the default and kube-system namespaces,
// then starts the controllers and waits until they have given the default
// namespace its ServiceAccount and CA ConfigMap.
func waitReady(ctx context.Context, admin *rest.Config, p *pki, ctlCtx context.Context) (func(), error) {
	client, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	poll := func(what string, ok func() (bool, error)) error {
		var last error
		for {
			done, err := ok()
			if done {
				return nil
			}
			if err != nil {
				last = err
			}
			select {
			case <-ctx.Done():
				if last != nil {
					return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
				}
				return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if err := poll("/readyz", func() (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && strings.TrimSpace(string(body)) == "ok", err
	}); err != nil {
		return nil, err
	}
	for _, ns := range []string{"default", "kube-system"} {
		if err := poll("namespace "+ns, func() (bool, error) {
			_, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return err == nil, err
		}); err != nil {
			return nil, err
		}
	}
	ctlConfig := rest.CopyConfig(admin)
	ctlConfig.CertData, ctlConfig.KeyData = p.controllerCertPEM, p.controllerKey
	waitCtl, err := startControllers(ctlCtx, ctlConfig, p.caPEM)
	if err != nil {
		return nil, fmt.Errorf("controllers: %w", err)
	}
	if err := poll("ServiceAccount default/default", func() (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, ignoreNotFound(err)
	}); err != nil {
		return waitCtl, err
	}
	if err := poll("ConfigMap default/kube-root-ca.crt", func() (bool, error) {
		_, err := client.CoreV1().ConfigMaps("default").Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err == nil, ignoreNotFound(err)
	}); err != nil {
		return waitCtl, err
	}
	return waitCtl, nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// writeKubeconfig writes an admin kubeconfig with inline credentials,
// atomically (temp file + rename in the same directory).
func writeKubeconfig(path, server string, p *pki) error {
	const name = "nspool-test"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["nspool-test-admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: p.adminCertPEM, ClientKeyData: p.adminKey,
	}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: "nspool-test-admin", Namespace: "default"}
	cfg.CurrentContext = name
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// redirectStderr points file descriptor 2 at the log file, so that klog,
// etcd's zap logger, gRPC and even Go runtime crash output go there and
// stdout stays a few readable lines. The original stderr is kept for our
// own error messages.
func redirectStderr(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	orig, err := syscall.Dup(2)
	if err != nil {
		return err
	}
	syscall.CloseOnExec(orig)
	errOut = os.NewFile(uintptr(orig), "stderr")
	if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
		return err
	}
	return f.Close()
}
