package gateway

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// FuzzPeekClientHello feeds arbitrary bytes to the ClientHello peek: it
// must not panic, must return every byte it consumed for replay, and must
// find the SNI of real ClientHellos.
func FuzzPeekClientHello(f *testing.F) {
	for _, sni := range []string{"a.grid.test", "", "x"} {
		f.Add(recordHello(f, sni))
	}
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		hello, consumed, err := peekClientHello(bytes.NewReader(data))
		if !bytes.HasPrefix(data, consumed) {
			t.Fatalf("consumed %d bytes that are not a prefix of the input", len(consumed))
		}
		if err == nil && len(hello.ServerName) > 255 {
			t.Fatalf("SNI of %d bytes", len(hello.ServerName))
		}
	})
}

func TestPeekClientHelloFindsSNI(t *testing.T) {
	t.Parallel()
	data := recordHello(t, "alpha.grid.test")
	hello, consumed, err := peekClientHello(bytes.NewReader(append(data, "trailing"...)))
	if err != nil {
		t.Fatal(err)
	}
	if hello.ServerName != "alpha.grid.test" || len(hello.ALPN) != 2 || hello.ALPN[0] != "h2" {
		t.Fatalf("hello %+v", hello)
	}
	if !bytes.HasPrefix(append(data, "trailing"...), consumed) || len(consumed) < len(data) {
		t.Fatalf("consumed %d of %d hello bytes", len(consumed), len(data))
	}
}

// recordHello captures the bytes of a real ClientHello for sni.
func recordHello(tb testing.TB, sni string) []byte {
	tb.Helper()
	a, b := net.Pipe()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
		c.SetDeadline(time.Now().Add(time.Second))
		c.Handshake()
		a.Close()
	}()
	var buf bytes.Buffer
	b.SetReadDeadline(time.Now().Add(time.Second))
	tmp := make([]byte, 4096)
	for {
		n, err := b.Read(tmp)
		buf.Write(tmp[:n])
		if err != nil || buf.Len() >= 5 && buf.Len() >= 5+int(buf.Bytes()[3])<<8|int(buf.Bytes()[4]) {
			break
		}
	}
	b.Close()
	return buf.Bytes()
}
