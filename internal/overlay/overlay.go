package overlay

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// Defaults and bounds.
const (
	DefaultTun        = "zgov0"
	DefaultMTU        = 1420
	DefaultListenPort = 51820
	DefaultRotate     = 2 * time.Minute
	// DefaultRecover is device.RejectAfterTime: after that long without a
	// handshake no WireGuard session with the peer is alive, so dropping
	// the pre-shared key cannot disturb traffic.
	DefaultRecover = device.RejectAfterTime
	// ConditionPQBlocked is the node condition for peers whose traffic
	// stopped because they had no post-quantum key within the grace period.
	ConditionPQBlocked = "overlay-pq-blocked"
	// ConditionPQMissing is the node condition for peers still reached on
	// classical keys while the post-quantum exchange is retried: it clears
	// by itself when the exchange succeeds, or becomes ConditionPQBlocked.
	ConditionPQMissing = "overlay-pq-missing"
	// DefaultPQGrace is how long a pair may carry traffic without a
	// post-quantum session (a first exchange normally completes within a
	// second or two of contact).
	DefaultPQGrace = 30 * time.Second
	// MaxPQGrace bounds Config.PQGrace: the policy cannot be turned off by
	// a grace period too long to matter.
	MaxPQGrace = 10 * time.Minute
	keepalive  = 25 // seconds: keeps NAT mappings and detects dead peers
)

// Config configures an Overlay.
type Config struct {
	Identity   identity.PrivateKey
	Prefix     netip.Prefix // the overlay's /48 (Prefix(chain))
	ListenPort int          // UDP; default DefaultListenPort
	Tun        string       // interface name; default DefaultTun
	MTU        int          // default DefaultMTU
	// Rotate is how often each pair's pre-shared key is renewed; default
	// DefaultRotate.
	Rotate time.Duration
	// Recover: when no WireGuard handshake with a peer has succeeded for
	// this long while a pre-shared key is set (e.g. the peer restarted and
	// lost the key, so every handshake fails and the in-tunnel exchange
	// cannot run), the key is dropped so a classical handshake brings the
	// tunnel back, and a new exchange follows. Default DefaultRecover.
	Recover time.Duration
	// PQGrace is how long traffic with a peer may flow without a
	// post-quantum session (one whose WireGuard handshake used a
	// pre-shared key from the ML-KEM exchange): after that, all traffic
	// with the peer but the key exchange itself stops until the exchange
	// succeeds. Default DefaultPQGrace, at most MaxPQGrace. There is no
	// setting that allows classical-only peers.
	PQGrace time.Duration
	// IP is the path of iproute2's ip; default found on PATH.
	IP     string
	Logger *slog.Logger
	Clock  Clock // default the system clock
}

// Peer is another node.
type Peer struct {
	Identity identity.PublicKey // signs its side of the key exchange
	Key      Key                // its WireGuard public key
	Endpoint netip.AddrPort     // its UDP endpoint
	// Networks are extra source prefixes it may send from (its /64s of
	// the private networks both nodes serve).
	Networks []netip.Prefix
}

// Overlay is a running overlay device. Its methods are safe for
// concurrent use.
type Overlay struct {
	cfg  Config
	log  *slog.Logger
	priv Key
	pub  Key
	addr netip.Addr
	dev  *device.Device
	gate *gate
	psk  *exchange

	mu    sync.Mutex
	peers map[Key]Peer
}

// New creates the TUN device, configures its address and starts
// WireGuard and the key exchange. It must be called in the network
// namespace the overlay lives in: the TUN and the sockets are created in
// the caller's namespace.
func New(cfg Config) (*Overlay, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if cfg.IP == "" {
		p, err := exec.LookPath("ip")
		if err != nil {
			return nil, errors.New("overlay: ip not found: install iproute2")
		}
		cfg.IP = p
	}
	o, err := newOverlay(cfg)
	if err != nil {
		return nil, err
	}
	t, err := tun.CreateTUN(cfg.Tun, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("overlay: create TUN %s: %w (needs root and /dev/net/tun)", cfg.Tun, err)
	}
	if err := o.startDevice(t, conn.NewDefaultBind()); err != nil {
		return nil, err
	}
	name, err := t.Name()
	if err != nil {
		o.dev.Close()
		return nil, err
	}
	script := fmt.Sprintf("addr replace %s/%d dev %s nodad\nlink set %s up\n", o.addr, cfg.Prefix.Bits(), name, name)
	if err := ipBatch(cfg.IP, script); err != nil {
		o.dev.Close()
		return nil, err
	}
	c, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(o.addr, ControlPort)))
	if err != nil {
		o.dev.Close()
		return nil, fmt.Errorf("overlay: key exchange socket: %w", err)
	}
	o.psk = newExchange(o, c)
	o.log.Info("overlay up", "address", o.addr.String(), "key", o.pub.String(), "port", cfg.ListenPort)
	return o, nil
}

// newInProcess starts an overlay on a TUN device and a bind given by the
// caller (wireguard-go's tuntest and bindtest in tests), with ctrl as the
// key exchange's socket on the overlay address.
func newInProcess(cfg Config, t tun.Device, bind conn.Bind, ctrl packetConn) (*Overlay, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	o, err := newOverlay(cfg)
	if err != nil {
		return nil, err
	}
	if err := o.startDevice(t, bind); err != nil {
		return nil, err
	}
	o.psk = newExchange(o, ctrl)
	return o, nil
}

func newOverlay(cfg Config) (*Overlay, error) {
	priv, pub, err := DeriveKey(cfg.Identity)
	if err != nil {
		return nil, err
	}
	addr, err := Addr(cfg.Prefix, pub)
	if err != nil {
		return nil, err
	}
	return &Overlay{cfg: cfg, log: cfg.Logger, priv: priv, pub: pub, addr: addr, peers: map[Key]Peer{}}, nil
}

// startDevice starts WireGuard on t (behind the gate) and bind; on error
// t is closed.
func (o *Overlay) startDevice(t tun.Device, bind conn.Bind) error {
	o.gate = &gate{Device: t, self: o.addr}
	debug := func(prefix string) func(string, ...any) {
		return func(f string, a ...any) {
			if o.log.Enabled(context.Background(), slog.LevelDebug) {
				o.log.Debug(prefix + fmt.Sprintf(f, a...))
			}
		}
	}
	o.dev = device.NewDevice(o.gate, bind, &device.Logger{Verbosef: debug("wireguard: "), Errorf: debug("wireguard error: ")})
	if err := o.dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", o.priv, o.cfg.ListenPort)); err != nil {
		o.dev.Close()
		return fmt.Errorf("overlay: configure: %w", err)
	}
	if err := o.dev.Up(); err != nil {
		o.dev.Close()
		return fmt.Errorf("overlay: up: %w", err)
	}
	return nil
}

func (c *Config) defaults() error {
	if c.Identity.IsZero() {
		return errors.New("overlay: Config needs the node's identity key")
	}
	if c.Prefix.Bits() != 48 {
		return fmt.Errorf("overlay: prefix %s: want an IPv6 /48", c.Prefix)
	}
	if c.PQGrace < 0 || c.PQGrace > MaxPQGrace {
		return fmt.Errorf("overlay: post-quantum grace period %s: want at most %s (0: the default, %s)", c.PQGrace, MaxPQGrace, DefaultPQGrace)
	}
	if c.Rotate < 0 || c.Recover < 0 {
		return errors.New("overlay: Rotate and Recover cannot be negative")
	}
	if c.ListenPort == 0 {
		c.ListenPort = DefaultListenPort
	}
	if c.Tun == "" {
		c.Tun = DefaultTun
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.Rotate == 0 {
		c.Rotate = DefaultRotate
	}
	if c.Recover == 0 {
		c.Recover = DefaultRecover
	}
	if c.PQGrace == 0 {
		c.PQGrace = DefaultPQGrace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	return nil
}

// Address is this node's overlay address.
func (o *Overlay) Address() netip.Addr { return o.addr }

// PublicKey is this node's WireGuard public key.
func (o *Overlay) PublicKey() Key { return o.pub }

// Tun is the overlay interface's name.
func (o *Overlay) Tun() string { return o.cfg.Tun }

// Close stops the key exchange and removes the device.
func (o *Overlay) Close() {
	o.psk.close()
	o.dev.Close()
}

// ErrCollision marks peers refused because their allowed IPs overlap
// this node's address or another peer's allowed IPs: WireGuard would
// silently move the overlapping addresses to one of them.
var ErrCollision = errors.New("overlay: overlapping peer addresses")

// SetPeers makes the peer set equal to peers. Peers that did not change
// are not touched, so their sessions and traffic go on; a removed peer is
// cut off at once. Peers whose addresses collide (see ErrCollision) are
// left out, all of them, and reported in the error; the others are
// applied.
//
// The node that initiates a pair's key exchange (the lower identity key)
// turns WireGuard's keepalives on at once, so its first handshake starts
// right away; the other waits firstContact (1-2 s) before it does. Two
// first handshakes sent at the same moment cross: each side drops the
// other's answer (WireGuard retries after 5 s), and wireguard-go's
// parallel handshake workers can even leave a session that carries
// traffic one way only until it is re-established 15 s later.
func (o *Overlay) SetPeers(ctx context.Context, peers []Peer) error {
	want, refused := screenPeers(o.cfg.Prefix, o.pub, o.addr, peers)
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	for _, p := range want {
		if old, ok := o.peers[p.Key]; ok && samePeer(old, p) {
			continue
		}
		a, err := Addr(o.cfg.Prefix, p.Key)
		if err != nil {
			return err
		}
		ka := 0
		if o.psk.keepaliveOn(p) {
			ka = keepalive
		}
		fmt.Fprintf(&b, "public_key=%s\nendpoint=%s\npersistent_keepalive_interval=%d\nreplace_allowed_ips=true\nallowed_ip=%s/128\n",
			p.Key, p.Endpoint, ka, a)
		for _, n := range p.Networks {
			fmt.Fprintf(&b, "allowed_ip=%s\n", n)
		}
	}
	var gone []Key
	for k := range o.peers {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "public_key=%s\nremove=true\n", k)
			gone = append(gone, k)
		}
	}
	if b.Len() > 0 {
		if err := o.dev.IpcSet(b.String()); err != nil {
			return fmt.Errorf("overlay: set peers: %w", err)
		}
	}
	o.peers = want
	o.psk.peersChanged(want, gone)
	o.updateGateLocked()
	return refused
}

// screenPeers returns the peers to install, keyed by WireGuard key, and
// an error wrapping ErrCollision that names every peer left out. A peer
// is left out when its key is listed twice with different details, when a
// network prefix it claims is not an IPv6 prefix outside the overlay's
// /48, or when any of its allowed IPs (its address /128 and its networks)
// overlaps this node's address or another peer's allowed IPs; then every
// peer in the overlap is left out, since which one is honest is unknown.
// Entries with this node's own key are ignored.
func screenPeers(prefix netip.Prefix, self Key, selfAddr netip.Addr, peers []Peer) (map[Key]Peer, error) {
	want := make(map[Key]Peer, len(peers))
	bad := map[Key]string{}
	for _, p := range peers {
		if p.Key == self {
			continue
		}
		if old, ok := want[p.Key]; ok && !samePeer(old, p) {
			bad[p.Key] = "listed twice with different details"
		}
		want[p.Key] = p
		for _, n := range p.Networks {
			if !n.IsValid() || !n.Addr().Is6() || n.Addr().Is4In6() || n.Bits() < prefix.Bits() || n.Overlaps(prefix) {
				bad[p.Key] = fmt.Sprintf("network %s is not an IPv6 prefix of at least /%d outside the overlay's %s", n, prefix.Bits(), prefix)
			}
		}
	}
	type claim struct {
		p   netip.Prefix
		key Key
	}
	var claims []claim
	for k, p := range want {
		if _, ok := bad[k]; ok {
			continue
		}
		a, err := Addr(prefix, k)
		if err != nil {
			bad[k] = err.Error()
			continue
		}
		claims = append(claims, claim{netip.PrefixFrom(a, 128), k})
		for _, n := range p.Networks {
			claims = append(claims, claim{n.Masked(), k})
		}
	}
	slices.SortFunc(claims, func(a, b claim) int { return a.p.Addr().Compare(b.p.Addr()) })
	self128 := netip.PrefixFrom(selfAddr, 128)
	for i, c := range claims {
		if c.p.Overlaps(self128) {
			bad[c.key] = fmt.Sprintf("%s overlaps this node's address", c.p)
		}
		// Sorted by first address: any overlap of c is with a later
		// claim that starts inside c, so scan forward while they do.
		for _, d := range claims[i+1:] {
			if !c.p.Contains(d.p.Addr()) {
				break
			}
			if d.key != c.key {
				why := fmt.Sprintf("%s overlaps %s of peer %s", c.p, d.p, d.key)
				bad[c.key], bad[d.key] = why, why
			}
		}
	}
	if len(bad) == 0 {
		return want, nil
	}
	msgs := make([]string, 0, len(bad))
	for k, why := range bad {
		delete(want, k)
		msgs = append(msgs, fmt.Sprintf("peer %s: %s", k, why))
	}
	slices.Sort(msgs)
	return want, fmt.Errorf("%w: left out %d peer(s) (check their ledger records): %s", ErrCollision, len(bad), strings.Join(msgs, "; "))
}

func samePeer(a, b Peer) bool {
	return a.Identity == b.Identity && a.Key == b.Key && a.Endpoint == b.Endpoint && slices.Equal(a.Networks, b.Networks)
}

// peer returns the peer with WireGuard key k.
func (o *Overlay) peer(k Key) (Peer, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.peers[k]
	return p, ok
}

// setPSK installs a pre-shared key for peer k, if it is still a peer.
func (o *Overlay) setPSK(k Key, psk Key) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.peers[k]; !ok {
		return nil
	}
	return o.dev.IpcSet(fmt.Sprintf("public_key=%s\nupdate_only=true\npreshared_key=%s\n", k, psk))
}

// dropPSK sets peer k's pre-shared key to zero if it still is was, so a
// key installed meanwhile by an exchange is kept. It reports whether it
// dropped the key.
func (o *Overlay) dropPSK(k Key, was Key) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.peers[k]; !ok {
		return false, nil
	}
	cur, err := o.presharedKey(k)
	if err != nil || cur != was {
		return false, err
	}
	return true, o.dev.IpcSet(fmt.Sprintf("public_key=%s\nupdate_only=true\npreshared_key=%s\n", k, Key{}))
}

// enableKeepalive turns on WireGuard's keepalives with peer k, if it is
// still a peer; if no session is up, the first keepalive starts a
// handshake.
func (o *Overlay) enableKeepalive(k Key) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.peers[k]; !ok {
		return nil
	}
	o.psk.mu.Lock()
	if p := o.psk.pairs[k]; p != nil {
		p.keepalive = true
	}
	o.psk.mu.Unlock()
	return o.dev.IpcSet(fmt.Sprintf("public_key=%s\nupdate_only=true\npersistent_keepalive_interval=%d\n", k, keepalive))
}

// rehandshake makes WireGuard start a new handshake with peer k now:
// the current session stops sending (it still receives until the peer
// moves to the new one) and a keepalive waits for the new session.
func (o *Overlay) rehandshake(k Key) {
	if p := o.dev.LookupPeer(device.NoisePublicKey(k)); p != nil {
		p.ExpireCurrentKeypairs()
		p.SendKeepalive()
	}
}

// lastHandshake is the time of the last WireGuard handshake with peer k
// that the device reports (zero if none).
func (o *Overlay) lastHandshake(k Key) (time.Time, error) {
	st, err := o.states()
	if err != nil {
		return time.Time{}, err
	}
	return st[k].lastHandshake, nil
}

// PresharedKey returns the pre-shared key in use with peer k (zero if
// none yet), for tests and diagnostics.
func (o *Overlay) PresharedKey(k Key) (Key, error) { return o.presharedKey(k) }

func (o *Overlay) presharedKey(k Key) (Key, error) {
	s, err := o.dev.IpcGet()
	if err != nil {
		return Key{}, err
	}
	var cur string
	for _, line := range strings.Split(s, "\n") {
		key, val, _ := strings.Cut(line, "=")
		switch key {
		case "public_key":
			cur = val
		case "preshared_key":
			if cur == k.String() {
				var out Key
				b, err := hex.DecodeString(val)
				if err != nil || len(b) != len(out) {
					return Key{}, fmt.Errorf("overlay: bad preshared_key from the device")
				}
				copy(out[:], b)
				return out, nil
			}
		}
	}
	return Key{}, fmt.Errorf("overlay: no peer %s", k)
}

// peerState is what the device reports about a peer.
type peerState struct {
	psk           Key
	lastHandshake time.Time // zero if none
}

// states returns the device's view of every peer.
func (o *Overlay) states() (map[Key]peerState, error) {
	s, err := o.dev.IpcGet()
	if err != nil {
		return nil, err
	}
	out := map[Key]peerState{}
	var cur Key
	var have bool
	var sec, nsec int64
	flush := func() {
		if have {
			st := out[cur]
			if sec != 0 || nsec != 0 {
				st.lastHandshake = time.Unix(sec, nsec)
			}
			out[cur] = st
		}
	}
	for _, line := range strings.Split(s, "\n") {
		key, val, _ := strings.Cut(line, "=")
		switch key {
		case "public_key":
			flush()
			have, sec, nsec = false, 0, 0
			if b, err := hex.DecodeString(val); err == nil && len(b) == len(cur) {
				cur, have = Key(b), true
				out[cur] = peerState{}
			}
		case "preshared_key":
			if b, err := hex.DecodeString(val); have && err == nil && len(b) == len(cur) {
				st := out[cur]
				st.psk = Key(b)
				out[cur] = st
			}
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(val, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(val, 10, 64)
		}
	}
	flush()
	return out, nil
}

func ipBatch(ip, script string) error {
	cmd := exec.Command(ip, "-batch", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("overlay: ip: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
