// Package tunnel carries connections from a gateway to backends that
// dialed out to it: a workload has no port open to the outside, so it
// opens a tunnel to one or more gateways and the gateways open streams
// through it, one per visitor connection.
//
// Transport: QUIC (quic-go) first; TLS 1.3 over TCP with yamux streams
// when UDP does not get through. Flow-control windows are large (6 MiB
// per QUIC stream, 16 MiB per yamux stream) so one stream keeps its speed
// at tens of milliseconds of round trip, and quic-go reads its socket
// through a wrapper that keeps paced bursts from overflowing its
// per-connection queue (session.go). Both ends authenticate with their identity keys: each TLS
// certificate is self-signed by the key, the backend pins the gateway's
// key, and the gateway takes the backend's key from its certificate.
//
// After TLS, the gateway sends a challenge and the backend answers with a
// signed hello that names the routes it serves, echoes the challenge,
// carries the TLS exporter value (so the signature binds this connection)
// and an expiry. The gateway asks its Authorizer about each name (the
// ledger's name servers, in production) and answers per name; a refused
// name comes back with the reason and the others are served.
//
// Each stream opened by the gateway starts with a short header: the name,
// the mode and the public client's address. The backend dials its local
// target, in passthrough mode with PROXY protocol on writes a PROXY v2
// header with that address first, and answers with one byte; the gateway's
// Dial waits for it, so a dead backend or target makes Dial try the next
// backend of the name instead of handing out a broken connection.
//
// Heartbeats (ping/pong on the control stream every 10 s, three missed end
// the tunnel) find dead paths; the backend reconnects forever with
// jittered exponential backoff capped at 30 s, to every gateway at once.
// Heartbeats, rechecks, backoff, QUIC re-probes and hello expiry run on
// a Clock from the config, so tests move time by hand.
//
// Goroutines have owners: Server.Close and the end of Client.Run return
// only once every goroutine each started has ended.
//
// Formats: docs/formats/tunnel.md.
package tunnel
