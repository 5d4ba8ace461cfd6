package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseRedisURL(t *testing.T) {
	o, err := ParseRedisURL("redis://127.0.0.1:6390/2")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Addrs) != 1 || o.Addrs[0] != "127.0.0.1:6390" || o.DB != 2 || o.IsClusterMode || o.MasterName != "" || o.TLSConfig != nil {
		t.Fatalf("standalone: %+v", o)
	}
	if o.DialTimeout != DefaultDialTimeout || o.ReadTimeout != DefaultReadTimeout || o.WriteTimeout != DefaultWriteTimeout || !o.ContextTimeoutEnabled {
		t.Fatalf("default timeouts not applied: %+v", o)
	}

	o, err = ParseRedisURL("rediss://app:s%40cret@cache.internal:6380?read_timeout=30ms&dial_timeout=2s&pool_size=8&max_retries=0&tls_server_name=redis.example")
	if err != nil {
		t.Fatal(err)
	}
	if o.Username != "app" || o.Password != "s@cret" || o.ReadTimeout != 30*time.Millisecond || o.DialTimeout != 2*time.Second ||
		o.PoolSize != 8 || o.MaxRetries != -1 || o.TLSConfig == nil || o.TLSConfig.ServerName != "redis.example" || o.TLSConfig.InsecureSkipVerify {
		t.Fatalf("tls+acl: %+v", o)
	}

	o, err = ParseRedisURL("redis://10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000")
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Addrs) != 3 || o.MasterName != "" {
		t.Fatalf("cluster seeds: %+v", o)
	}
	o, err = ParseRedisURL("redis://cfg.example:7000?mode=cluster")
	if err != nil || !o.IsClusterMode {
		t.Fatalf("mode=cluster: %+v %v", o, err)
	}

	o, err = ParseRedisURL("redis://:pw@10.0.0.1:26379?addr=10.0.0.2:26379&master=mymaster&sentinel_password=spw")
	if err != nil {
		t.Fatal(err)
	}
	if o.MasterName != "mymaster" || o.Password != "pw" || o.SentinelPassword != "spw" || len(o.Addrs) != 2 {
		t.Fatalf("sentinel: %+v", o)
	}
	o, err = ParseRedisURL("rediss+cluster://u:p@cfg.example:7000")
	if err != nil || !o.IsClusterMode || o.TLSConfig == nil || o.Username != "u" {
		t.Fatalf("rediss+cluster: %+v %v", o, err)
	}
	o, err = ParseRedisURL("redis+sentinel://s1:26379/mymaster?addr=s2:26379")
	if err != nil || o.MasterName != "mymaster" || len(o.Addrs) != 2 || o.DB != 0 {
		t.Fatalf("redis+sentinel: %+v %v", o, err)
	}
	if o, _ := ParseRedisURL("redis://h"); o.Addrs[0] != "h:6379" {
		t.Fatalf("default port: %v", o.Addrs)
	}
}

func TestParseRedisURLCA(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRedisURL("rediss://h:1?tls_ca=" + bad); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Fatalf("bad CA file: %v", err)
	}
	if _, err := ParseRedisURL("rediss://h:1?tls_ca=" + filepath.Join(dir, "missing.pem")); err == nil {
		t.Fatal("missing CA file accepted")
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	for _, u := range []string{
		"",
		"http://h:1",
		"redis://",
		"redis:opaque",
		"redis://h:99999",
		"redis://h:1/x",
		"redis://h:1?readtimeout=1s",
		"redis://h:1?read_timeout=0s",
		"redis://h:1?read_timeout=soon",
		"redis://h:1?pool_size=-1",
		"redis://h:1?addr=nohostport",
		"redis://h:1?mode=ring",
		"redis://h:1?mode=sentinel",
		"redis://h:1?mode=standalone&addr=h:2",
		"redis://h:1?mode=cluster&master=m",
		"redis://h:1/3?mode=cluster",
		"redis://h:1?skip_verify=true",
		"rediss://h:1?skip_verify=maybe",
		"redis://h:1?%zz",
		"redis+ring://h:1",
		"redis+sentinel://h:1",
		"redis+cluster://h:1/2",
	} {
		if _, err := ParseRedisURL(u); err == nil {
			t.Errorf("%q: no error", u)
		}
	}
}

func TestRedactURL(t *testing.T) {
	got := RedactURL("redis://u:topsecret@h:1?master=m&sentinel_password=alsosecret")
	if strings.Contains(got, "topsecret") || strings.Contains(got, "alsosecret") {
		t.Fatalf("password leaked: %s", got)
	}
}

func FuzzParseRedisURL(f *testing.F) {
	for _, s := range []string{"redis://h:1", "rediss://u:p@h:2/1?read_timeout=1s", "redis://h?addr=a:1&mode=cluster", "redis://h?master=m&addr=[::1]:5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseRedisURL(s)
		if err == nil && (len(o.Addrs) == 0 || o.ReadTimeout <= 0 || o.WriteTimeout <= 0 || o.DialTimeout <= 0) {
			t.Fatalf("%q parsed without addresses or timeouts: %+v", s, o)
		}
		_ = RedactURL(s)
	})
}
