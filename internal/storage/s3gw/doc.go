// Package s3gw serves a store (internal/storage/catalog) as an
// S3-compatible endpoint, for the tools people already use (rclone,
// restic, the AWS CLI).
//
// github.com/johannesboyne/gofakes3 speaks the protocol (routing, XML,
// ranges, multipart uploads); this package gives it a backend over the
// store (backend.go) and puts in front of it what gofakes3 does not do:
// AWS Signature Version 4 (sigv4.go, chunked.go), checked on every request
// against one access key derived from the owner's mnemonic (keys.go), with
// a 15-minute window and a replay cache for requests that change state
// (auth.go). docs/formats/s3.md is the specification.
//
// Buckets are the store's top-level directories; object "k" of bucket "b"
// is the file "b/k". Keys that are not valid store names (empty path
// components, a trailing slash, "." or "..") are refused.
package s3gw
