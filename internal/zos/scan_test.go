package zos

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zerogrid/zerogrid/internal/netnstest"
)

// scanTCP tries every TCP port of ip from inside namespace ns and returns
// the ports that accepted a connection and the number that neither
// accepted nor refused within the timeout. It runs on the namespace's
// thread with non-blocking sockets, 1024 ports at a time.
func scanTCP(t testing.TB, ns string, ip net.IP) (open []int, silent int) {
	t.Helper()
	var addr [4]byte
	copy(addr[:], ip.To4())
	netnstest.In(t, ns, func() {
		for start := 1; start <= 65535; start += 1024 {
			o, s, err := scanBatch(addr, start, min(start+1023, 65535))
			if err != nil {
				t.Errorf("scan %d–: %v", start, err)
				return
			}
			open, silent = append(open, o...), silent+s
		}
	})
	return open, silent
}

func scanBatch(addr [4]byte, first, last int) (open []int, silent int, err error) {
	fds := map[int32]int{} // fd → port
	defer func() {
		for fd := range fds {
			unix.Close(int(fd))
		}
	}()
	var pfds []unix.PollFd
	for port := first; port <= last; port++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, 0, err
		}
		fds[int32(fd)] = port
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: addr}); err != nil && !errors.Is(err, unix.EINPROGRESS) {
			return nil, 0, fmt.Errorf("connect %d: %w", port, err)
		}
		pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT})
	}
	pending := len(pfds)
	deadline := time.Now().Add(20 * time.Second)
	for pending > 0 && time.Now().Before(deadline) {
		if _, err := unix.Poll(pfds, 1000); err != nil && !errors.Is(err, unix.EINTR) {
			return nil, 0, err
		}
		for i := range pfds {
			if pfds[i].Fd < 0 || pfds[i].Revents == 0 {
				continue
			}
			soerr, err := unix.GetsockoptInt(int(pfds[i].Fd), unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soerr == 0 {
				open = append(open, fds[pfds[i].Fd])
			}
			pfds[i].Fd = -1 // poll ignores negative fds
			pending--
		}
	}
	return open, pending, nil
}
