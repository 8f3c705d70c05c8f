package zos

import (
	"os"
	"testing"
)

// tempDirs are shared across tests (the built zgridd and boot image) and
// removed when they all ran.
var tempDirs []string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
