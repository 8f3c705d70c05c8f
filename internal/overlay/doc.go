// Package overlay is the encrypted IPv6 network between nodes: a
// WireGuard device (golang.zx2c4.com/wireguard, userspace, on a Linux TUN
// with its offloads and batched UDP) whose peers are the other nodes the
// ledger lists, with pre-shared keys from a post-quantum key exchange.
//
//   - Keys: a node's WireGuard key is derived from its identity key
//     (identity.PrivateKey.OverlayKey: HKDF-SHA256 of the ed25519 seed), so the node needs no other secret;
//     its public half and UDP endpoint are in its ledger record.
//   - Addresses: a node's overlay address is the overlay's /48 followed by
//     80 bits of a digest of its WireGuard public key, so an address proves
//     which key it belongs to. Each peer's allowed IPs are exactly its own
//     address (and its /64s of the private networks both nodes serve), so
//     WireGuard's cryptokey routing drops a packet whose inner source does
//     not belong to the peer it came from.
//   - Post-quantum: every pair of peers runs an ML-KEM-768 exchange
//     (crypto/mlkem) over the tunnel, signed by both identity keys and
//     binding both WireGuard keys, and installs the result as the pair's
//     WireGuard pre-shared key once both sides hold it; it is renewed
//     every Rotate (2 minutes by default). A renewed key takes effect at
//     the next WireGuard handshake, so traffic never stops for it; a
//     pair's first key is followed by a handshake at once, so its
//     sessions are post-quantum within a second of contact.
//   - Policy: a peer whose sessions have no post-quantum key after
//     PQGrace is cut off (all traffic but the key exchange) until they
//     have one, and listed in Problems.
//   - Firewall: a default-deny inbound nftables filter for a workload's
//     namespace, opened only for its declared TCP and UDP ports.
//
// The wire formats are in docs/formats/overlay.md.
package overlay
