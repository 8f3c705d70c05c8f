// Package release is zerogrid's repository of signed node software, on The
// Update Framework (go-tuf/v2): release managers sign it (Repo), the hub
// serves it and takes only pushes that verify (Handler), and nodes fetch and
// verify it (Client) before they run any of it (ExecMemory).
//
// Trust starts from a root metadata file a node gets at first boot (its
// --release-root, or the one baked into the node OS image); from there every
// root rotation, every role's threshold of signatures, expiry and version
// number is checked by go-tuf, and every target's length and SHA-256 before
// it is used. The servers in between are trusted for nothing but
// availability. docs/formats/release.md specifies the layout and the
// fields zerogrid adds.
package release
