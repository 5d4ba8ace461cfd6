package cache

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Default client timeouts, applied unless the URL sets them. They keep a dead Redis from
// holding a request: the cache adds its own, shorter, per-call deadlines on top.
const (
	DefaultDialTimeout  = 500 * time.Millisecond
	DefaultReadTimeout  = 250 * time.Millisecond
	DefaultWriteTimeout = 250 * time.Millisecond
	DefaultPoolTimeout  = 250 * time.Millisecond
	DefaultMaxRetries   = 1
	// DefaultDialerRetries bounds dial attempts per connection (go-redis tries 5 by
	// default, which multiplies the cost of a dead Redis before the breaker opens).
	DefaultDialerRetries = 1
)

// ParseRedisURL turns one URL into go-redis UniversalOptions for a standalone server, a
// Sentinel-managed master or a Redis Cluster:
//
//	redis[s]://[user[:password]@]host[:port][/db][?param=value&...]
//	redis[s]+cluster://[user[:password]@]host[:port][?addr=host:port&...]
//	redis[s]+sentinel://[user[:password]@]host[:port]/MASTER[?addr=host:port&...]
//
// The +cluster and +sentinel schemes are short for mode=cluster and mode=sentinel (the
// path then names the master). rediss enables TLS (server certificates are verified; tls_ca=FILE adds a CA bundle,
// tls_server_name overrides the name checked, skip_verify=true turns checking off). The
// user and password are the ACL credentials of the data nodes. Parameters:
//
//	addr=host:port      another seed address (repeatable): Cluster nodes or Sentinels
//	mode=MODE           standalone, cluster or sentinel; default: sentinel when master is
//	                    set, cluster when there are several addresses, else standalone
//	master=NAME         the Sentinel master name (implies mode=sentinel)
//	sentinel_user=U, sentinel_password=P   credentials of the Sentinels themselves
//	dial_timeout, read_timeout, write_timeout, pool_timeout   durations (e.g. 300ms)
//	pool_size=N, max_retries=N, dialer_retries=N, client_name=NAME
//
// Unknown parameters are an error, so a typo does not silently fall back to defaults.
func ParseRedisURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("cache: redis url: %w", err)
	}
	o := &redis.UniversalOptions{
		DialTimeout:           DefaultDialTimeout,
		ReadTimeout:           DefaultReadTimeout,
		WriteTimeout:          DefaultWriteTimeout,
		PoolTimeout:           DefaultPoolTimeout,
		MaxRetries:            DefaultMaxRetries,
		DialerRetries:         DefaultDialerRetries,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	}
	base, variant, _ := strings.Cut(u.Scheme, "+")
	switch base {
	case "redis":
	case "rediss":
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	default:
		return nil, fmt.Errorf("cache: redis url: scheme %q is not redis or rediss", u.Scheme)
	}
	mode := ""
	switch variant {
	case "":
	case "cluster", "sentinel":
		mode = variant
	default:
		return nil, fmt.Errorf("cache: redis url: scheme %q (want redis, rediss, redis+cluster or redis+sentinel)", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, errors.New("cache: redis url: no host (want redis://host:port)")
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("cache: redis url: bad port %q", port)
	}
	o.Addrs = []string{net.JoinHostPort(host, port)}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if p := strings.Trim(u.Path, "/"); p != "" && mode == "sentinel" {
		o.MasterName = p // redis+sentinel://host:26379/MASTER
	} else if p != "" {
		db, err := strconv.Atoi(p)
		if err != nil || db < 0 {
			return nil, fmt.Errorf("cache: redis url: database %q is not a number", p)
		}
		o.DB = db
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("cache: redis url: %w", err)
	}
	serverName := host
	for name, vals := range q {
		v := vals[len(vals)-1]
		var err error
		switch name {
		case "addr":
			for _, a := range vals {
				if _, _, e := net.SplitHostPort(a); e != nil {
					return nil, fmt.Errorf("cache: redis url: addr %q: %v", a, e)
				}
				o.Addrs = append(o.Addrs, a)
			}
		case "mode":
			mode = v
		case "master":
			o.MasterName = v
		case "sentinel_user":
			o.SentinelUsername = v
		case "sentinel_password":
			o.SentinelPassword = v
		case "dial_timeout":
			o.DialTimeout, err = parseTimeout(v)
		case "read_timeout":
			o.ReadTimeout, err = parseTimeout(v)
		case "write_timeout":
			o.WriteTimeout, err = parseTimeout(v)
		case "pool_timeout":
			o.PoolTimeout, err = parseTimeout(v)
		case "pool_size":
			o.PoolSize, err = parseCount(v)
		case "max_retries":
			o.MaxRetries, err = parseCount(v)
			if err == nil && o.MaxRetries == 0 {
				o.MaxRetries = -1 // go-redis: -1 disables retries, 0 means its default
			}
		case "dialer_retries":
			o.DialerRetries, err = parseCount(v)
			if err == nil && o.DialerRetries == 0 {
				err = errors.New("must be at least 1")
			}
		case "client_name":
			o.ClientName = v
		case "tls_ca", "tls_server_name", "skip_verify":
			if o.TLSConfig == nil {
				return nil, fmt.Errorf("cache: redis url: %s needs the rediss:// scheme", name)
			}
			switch name {
			case "tls_ca":
				err = addCA(o.TLSConfig, v)
			case "tls_server_name":
				serverName = v
			case "skip_verify":
				o.TLSConfig.InsecureSkipVerify, err = strconv.ParseBool(v)
			}
		default:
			return nil, fmt.Errorf("cache: redis url: unknown parameter %q", name)
		}
		if err != nil {
			return nil, fmt.Errorf("cache: redis url: %s: %w", name, err)
		}
	}
	if o.TLSConfig != nil {
		o.TLSConfig.ServerName = serverName
	}
	switch mode {
	case "":
	case "standalone":
		if len(o.Addrs) > 1 || o.MasterName != "" {
			return nil, errors.New("cache: redis url: mode=standalone takes one address and no master")
		}
	case "cluster":
		if o.MasterName != "" {
			return nil, errors.New("cache: redis url: mode=cluster takes no master")
		}
		o.IsClusterMode = true
	case "sentinel":
		if o.MasterName == "" {
			return nil, errors.New("cache: redis url: mode=sentinel needs master=NAME")
		}
	default:
		return nil, fmt.Errorf("cache: redis url: unknown mode %q (standalone, cluster, sentinel)", mode)
	}
	if o.DB != 0 && (o.IsClusterMode || (len(o.Addrs) > 1 && o.MasterName == "")) {
		return nil, errors.New("cache: redis url: Redis Cluster has only database 0")
	}
	return o, nil
}

func parseTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, errors.New("must be positive: every Redis call needs a timeout")
	}
	return d, nil
}

func parseCount(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 1<<16 {
		return 0, fmt.Errorf("%q is not a count", v)
	}
	return n, nil
}

func addCA(c *tls.Config, file string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if c.RootCAs == nil {
		c.RootCAs = x509.NewCertPool()
	}
	if !c.RootCAs.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no PEM certificates in %s", file)
	}
	return nil
}

// OpenRedis parses url (see ParseRedisURL) and returns a client; it does not connect until
// the first command. The caller closes it. The first call also routes go-redis's own log
// lines (dial failures, Sentinel and Cluster topology changes) to slog at Info level, so they
// follow the process's log format instead of going raw to stderr.
func OpenRedis(url string) (redis.UniversalClient, error) {
	o, err := ParseRedisURL(url)
	if err != nil {
		return nil, err
	}
	routeLogs.Do(func() { redis.SetLogger(slogPrintf{}) })
	return redis.NewUniversalClient(o), nil
}

var routeLogs sync.Once

// slogPrintf adapts go-redis's Printf logger to the default slog logger.
type slogPrintf struct{}

func (slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().Log(ctx, slog.LevelInfo, "redis client: "+fmt.Sprintf(format, v...))
}

// RedactURL returns url with its password replaced by "xxxxx", for logs.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable redis url)"
	}
	q := u.Query()
	if q.Has("sentinel_password") {
		q.Set("sentinel_password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
