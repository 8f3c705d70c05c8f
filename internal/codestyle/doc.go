// Package codestyle holds only tests that hold the whole repository to the
// house style: every package has a doc comment and every Go file is
// gofmt-formatted.
package codestyle
