package zdb

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"
)

// BenchmarkWire measures SET and GET of shard-sized values over loopback,
// through go-redis, in a seq-mode namespace as a storage client uses it.
func BenchmarkWire(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		store, err := Open(Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if ns, _ := store.Namespace(DefaultNamespace); ns.Configure("mode", "seq") != nil {
			b.Fatal("cannot switch to seq mode")
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		srv := NewServer(store, ServerConfig{})
		go srv.Serve(ln)
		rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), Protocol: 2, DisableIdentity: true, PoolSize: 1})
		ctx := context.Background()
		val := make([]byte, size)
		var keys []string
		b.Run(fmt.Sprintf("SET/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				k, err := rdb.Do(ctx, "SET", "", val).Text()
				if err != nil {
					b.Fatal(err)
				}
				keys = append(keys, k)
			}
		})
		b.Run(fmt.Sprintf("GET/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				if _, err := rdb.Do(ctx, "GET", keys[i%len(keys)]).Text(); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		rdb.Close()
		srv.Close()
		store.Close()
	}
}
