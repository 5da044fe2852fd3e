package main

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	cacheddiscovery "k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/controller-manager/pkg/informerfactory"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/controller/certificates/rootcacertpublisher"
	"k8s.io/kubernetes/pkg/controller/clusterroleaggregation"
	"k8s.io/kubernetes/pkg/controller/garbagecollector"
	namespacecontroller "k8s.io/kubernetes/pkg/controller/namespace"
	"k8s.io/kubernetes/pkg/controller/namespace/deletion"
)

// startControllers runs, in this process, the kube-controller-manager
// controllers a bare API server lacks and tests notice:
//   - serviceaccount: a "default" ServiceAccount in every namespace
//   - root-ca-cert-publisher: a "kube-root-ca.crt" ConfigMap in every namespace
//   - namespace: empties deleted namespaces and removes their finalizer
//   - clusterrole-aggregation: fills the aggregated ClusterRoles
//     (admin, edit, view), which are empty rules without it
//   - garbage-collector: deletes dependents through ownerReferences
//     (background and foreground deletion)
//
// It returns once the informer caches are synced; the returned func waits
// for the controllers to stop after ctx is cancelled.
func startControllers(ctx context.Context, admin *rest.Config, caPEM []byte) (func(), error) {
	clientFor := func(name string) (*rest.Config, *kubernetes.Clientset, error) {
		c := rest.CopyConfig(admin)
		c.QPS, c.Burst = 200, 400
		rest.AddUserAgent(c, name)
		cs, err := kubernetes.NewForConfig(c)
		return c, cs, err
	}
	_, infClient, err := clientFor("nspool-control-plane/informers")
	if err != nil {
		return nil, err
	}
	factory := informers.NewSharedInformerFactory(infClient, 10*time.Minute)
	logger := klog.FromContext(ctx)

	_, saClient, err := clientFor("service-account-controller")
	if err != nil {
		return nil, err
	}
	sac, err := newServiceAccountsController(logger,
		factory.Core().V1().ServiceAccounts(), factory.Core().V1().Namespaces(), saClient)
	if err != nil {
		return nil, err
	}

	_, pubClient, err := clientFor("root-ca-cert-publisher")
	if err != nil {
		return nil, err
	}
	pub, err := rootcacertpublisher.NewPublisher(factory.Core().V1().ConfigMaps(),
		factory.Core().V1().Namespaces(), pubClient, caPEM)
	if err != nil {
		return nil, err
	}

	nsConfig, nsClient, err := clientFor("namespace-controller")
	if err != nil {
		return nil, err
	}
	nsMeta, err := metadata.NewForConfig(nsConfig)
	if err != nil {
		return nil, err
	}
	nsc := namespacecontroller.NewNamespaceController(ctx, nsClient, nsMeta,
		nsClient.Discovery().ServerPreferredNamespacedResources,
		factory.Core().V1().Namespaces(), 5*time.Minute, v1.FinalizerKubernetes)

	// Fast path: upstream waits 5 s before emptying a deleted namespace (for
	// HA API servers and etcd followers to catch up, which a one-member test
	// control plane has not). Try once at once; the controller above still
	// retries whatever is left.
	fastDeleter := deletion.NewNamespacedResourcesDeleter(ctx, nsClient.CoreV1().Namespaces(), nsMeta,
		nsClient.CoreV1(), nsClient.Discovery().ServerPreferredNamespacedResources, v1.FinalizerKubernetes)
	fastQueue := workqueue.NewTyped[string]()
	onNamespace := func(obj any) {
		if ns, ok := obj.(*v1.Namespace); ok && ns.DeletionTimestamp != nil {
			fastQueue.Add(ns.Name)
		}
	}
	if _, err := factory.Core().V1().Namespaces().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onNamespace,
		UpdateFunc: func(_, obj any) { onNamespace(obj) },
	}); err != nil {
		return nil, err
	}
	fastDelete := func() {
		for {
			name, quit := fastQueue.Get()
			if quit {
				return
			}
			if err := fastDeleter.Delete(ctx, name); err != nil {
				logger.V(2).Info("fast namespace deletion incomplete, left to the namespace controller", "namespace", name, "err", err)
			}
			fastQueue.Done(name)
		}
	}

	_, craClient, err := clientFor("clusterrole-aggregation-controller")
	if err != nil {
		return nil, err
	}
	cra := clusterroleaggregation.NewClusterRoleAggregation(factory.Rbac().V1().ClusterRoles(), craClient.RbacV1())

	gcConfig, gcClient, err := clientFor("generic-garbage-collector")
	if err != nil {
		return nil, err
	}
	gcMeta, err := metadata.NewForConfig(gcConfig)
	if err != nil {
		return nil, err
	}
	metaFactory := metadatainformer.NewSharedInformerFactory(gcMeta, 10*time.Minute)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cacheddiscovery.NewMemCacheClient(gcClient.Discovery()))
	informersStarted := make(chan struct{})
	gc, err := garbagecollector.NewGarbageCollector(ctx, gcClient, gcMeta, mapper,
		garbagecollector.DefaultIgnoredResources(),
		informerfactory.NewInformerFactory(factory, metaFactory), informersStarted)
	if err != nil {
		return nil, err
	}

	var wg sync.WaitGroup
	for _, run := range []func(){
		func() { sac.Run(ctx, 2) },
		func() { pub.Run(ctx, 2) },
		func() { nsc.Run(ctx, 5) },
		fastDelete, fastDelete,
		func() { <-ctx.Done(); fastQueue.ShutDown() },
		func() { cra.Run(ctx, 1) },
		func() { gc.Run(ctx, 5, 30*time.Second) },
		// pick up new resource types (CRDs) as kube-controller-manager does
		func() { gc.Sync(ctx, gcClient.Discovery(), 10*time.Second) },
		func() { wait.Until(mapper.Reset, 10*time.Second, ctx.Done()) },
	} {
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	factory.Start(ctx.Done())
	metaFactory.Start(ctx.Done())
	close(informersStarted)
	factory.WaitForCacheSync(ctx.Done())
	return func() {
		wg.Wait()
		factory.Shutdown()
		metaFactory.Shutdown()
	}, nil
}
