package chain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtpubsub "github.com/cometbft/cometbft/libs/pubsub"
	nm "github.com/cometbft/cometbft/node"
	rpcserver "github.com/cometbft/cometbft/rpc/jsonrpc/server"
)

// rpcServer serves CometBFT's JSON-RPC and websocket routes on listeners
// this package owns. It mirrors node.(*Node).startRPC in CometBFT v1.0.1,
// with two differences: the bound address is known (so port 0 works), and
// close shuts every connection, hijacked websockets included, and waits for
// handlers to return before the node's stores are closed.
type rpcServer struct {
	listeners []net.Listener
	servers   []*http.Server
	conns     *connSet
	served    sync.WaitGroup // Serve goroutines

	mu       sync.Mutex
	closed   bool
	handlers sync.WaitGroup // in-flight requests and websocket sessions

	closeOnce sync.Once
	closeErr  error
}

// listenRPC binds every address in the comma-separated [rpc] laddr.
func listenRPC(conf *cmtcfg.RPCConfig) (*rpcServer, error) {
	s := &rpcServer{conns: &connSet{m: make(map[*trackedConn]struct{})}}
	for _, addr := range strings.Split(conf.ListenAddress, ",") {
		addr = strings.TrimSpace(addr)
		if addr == "" {
			continue
		}
		l, err := rpcserver.Listen(addr, conf.MaxOpenConnections)
		if err != nil {
			_ = s.close()
			return nil, fmt.Errorf("rpc listen: %w", err)
		}
		s.listeners = append(s.listeners, trackingListener{Listener: l, set: s.conns})
	}
	if len(s.listeners) == 0 {
		return nil, fmt.Errorf("%w: [rpc] laddr %q has no address", ErrConfig, conf.ListenAddress)
	}
	return s, nil
}

// addr is the first listener's bound address.
func (s *rpcServer) addr() string {
	return s.listeners[0].Addr().String()
}

// serve starts HTTP service for n on every listener.
func (s *rpcServer) serve(n *nm.Node, conf *cmtcfg.RPCConfig, logger cmtlog.Logger) error {
	rpcLogger := logger.With("module", "rpc-server")
	sc := serverConfig(conf)
	mux, err := rpcMux(n, conf, sc, rpcLogger)
	if err != nil {
		return err
	}
	handler := s.track(rpcserver.PreChecksHandler(rpcserver.RecoverAndLogHandler(mux, rpcLogger), sc))
	for _, l := range s.listeners {
		srv := &http.Server{
			Handler:           handler,
			ReadTimeout:       sc.ReadTimeout,
			ReadHeaderTimeout: sc.ReadTimeout,
			WriteTimeout:      sc.WriteTimeout,
			MaxHeaderBytes:    sc.MaxHeaderBytes,
		}
		s.servers = append(s.servers, srv)
		s.served.Add(1)
		go func() {
			defer s.served.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				rpcLogger.Error("RPC HTTP server stopped", "err", err)
			}
		}()
	}
	return nil
}

// rpcMux routes CometBFT's JSON-RPC methods and its websocket endpoint.
func rpcMux(n *nm.Node, conf *cmtcfg.RPCConfig, sc *rpcserver.Config, logger cmtlog.Logger) (*http.ServeMux, error) {
	env, err := n.ConfigureRPC()
	if err != nil {
		return nil, fmt.Errorf("configure rpc: %w", err)
	}
	routes := env.GetRoutes()
	if conf.Unsafe {
		env.AddUnsafeRoutes(routes)
	}
	wsLogger := logger.With("protocol", "websocket")
	wm := rpcserver.NewWebsocketManager(routes,
		rpcserver.OnDisconnect(func(remoteAddr string) {
			err := n.EventBus().UnsubscribeAll(context.Background(), remoteAddr)
			if err != nil && !errors.Is(err, cmtpubsub.ErrSubscriptionNotFound) {
				wsLogger.Error("Failed to unsubscribe addr from events", "addr", remoteAddr, "err", err)
			}
		}),
		rpcserver.ReadLimit(sc.MaxBodyBytes),
		rpcserver.WriteChanCapacity(conf.WebSocketWriteBufferSize),
	)
	wm.SetLogger(wsLogger)
	mux := http.NewServeMux()
	mux.HandleFunc("/websocket", wm.WebsocketHandler)
	mux.HandleFunc("/v1/websocket", wm.WebsocketHandler)
	rpcserver.RegisterRPCFuncs(mux, routes, logger)
	return mux, nil
}

// serverConfig copies the [rpc] limits, keeping the write timeout above
// timeout_broadcast_tx_commit as CometBFT does.
func serverConfig(conf *cmtcfg.RPCConfig) *rpcserver.Config {
	sc := rpcserver.DefaultConfig()
	sc.MaxRequestBatchSize = conf.MaxRequestBatchSize
	sc.MaxBodyBytes = conf.MaxBodyBytes
	sc.MaxHeaderBytes = conf.MaxHeaderBytes
	sc.MaxOpenConnections = conf.MaxOpenConnections
	if sc.WriteTimeout <= conf.TimeoutBroadcastTxCommit {
		sc.WriteTimeout = conf.TimeoutBroadcastTxCommit + time.Second
	}
	return sc
}

// track counts in-flight handlers and turns requests away once closing.
func (s *rpcServer) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "node is stopping", http.StatusServiceUnavailable)
			return
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		defer s.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// close stops accepting and closes every connection, websockets included.
// It is idempotent. Call wait afterwards.
func (s *rpcServer) close() error {
	s.closeOnce.Do(func() { s.closeErr = s.doClose() })
	return s.closeErr
}

func (s *rpcServer) doClose() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.conns.closeAll()
	return errors.Join(errs...)
}

// wait blocks until every handler and Serve goroutine has returned. Handlers
// blocked on the node (broadcast_tx_commit) return once the node's event bus
// stops, so call it after stopping the node.
func (s *rpcServer) wait() {
	s.handlers.Wait()
	s.served.Wait()
}

// connSet holds the open connections accepted by trackingListener.
type connSet struct {
	mu     sync.Mutex
	m      map[*trackedConn]struct{}
	closed bool
}

func (cs *connSet) add(c *trackedConn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	cs.m[c] = struct{}{}
	return true
}

func (cs *connSet) remove(c *trackedConn) {
	cs.mu.Lock()
	delete(cs.m, c)
	cs.mu.Unlock()
}

func (cs *connSet) closeAll() {
	cs.mu.Lock()
	cs.closed = true
	conns := make([]*trackedConn, 0, len(cs.m))
	for c := range cs.m {
		conns = append(conns, c)
	}
	cs.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// trackingListener records accepted connections so close can reach the
// ones net/http no longer knows about after a websocket upgrade hijacks them.
type trackingListener struct {
	net.Listener
	set *connSet
}

func (l trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, set: l.set}
		if l.set.add(tc) {
			return tc, nil
		}
		_ = c.Close()
	}
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c) })
	return c.Conn.Close()
}
