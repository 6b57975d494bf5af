package config_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/quotawatch/quotawatch/config"
	"github.com/quotawatch/quotawatch/internal/etcdtest"
)

// TestEtcdTLSReachesACluster: what ha.etcd loads is enough to reach a real
// etcd that demands a client certificate, as the daemon will.
func TestEtcdTLSReachesACluster(t *testing.T) {
	c := etcdtest.StartTLS(t, 1)
	f := c.TLS()
	yml := fmt.Sprintf("cloud:\n  auth_url: https://a.example/identity/v2.0\n  service_token: x\n"+
		"ha:\n  etcd:\n    endpoints: [%q]\n    ca_file: %s\n    cert_file: %s\n    key_file: %s\n",
		c.Endpoint(0), f.CA, f.Cert, f.Key)
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yml), 0o600))
	cfg, err := config.Load(path, config.Options{LookupEnv: lookup(nil)})
	require.NoError(t, err)
	e := cfg.HA.Etcd
	// The files are read once, at load: the cluster is reached without them.
	require.NoError(t, os.Remove(f.Key))

	tc, err := e.TLS()
	require.NoError(t, err)
	ccfg := etcdtest.ClientConfig(e.Endpoints...)
	ccfg.TLS = tc
	cli, err := clientv3.New(ccfg)
	require.NoError(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cli.Put(ctx, e.Prefix+"probe", "ok")
	require.NoError(t, err)
	resp, err := cli.Get(ctx, e.Prefix, clientv3.WithPrefix())
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1)
	require.True(t, strings.HasPrefix(string(resp.Kvs[0].Key), "/quotawatch/"))
}
