package zos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/netboot"
	"github.com/jsimonetti/rtnetlink/rtnl"
)

// dhcpLease is the lease PID 1 holds and renews.
type dhcpLease struct {
	iface  string
	client *nclient4.Client
	lease  *nclient4.Lease
}

// networkUp brings the loopback interface up, then tries DHCPv4 on every
// Ethernet interface in turn and configures the first that gets a lease:
// address, default route, /etc/resolv.conf.
func networkUp(ctx context.Context, log *slog.Logger) (*dhcpLease, error) {
	if err := linkUp("lo"); err != nil {
		return nil, fmt.Errorf("bring lo up: %w", err)
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) != 6 {
			continue
		}
		l, err := dhcpIface(ctx, log, ifc.Name)
		if err != nil {
			log.Warn("no DHCP lease", "iface", ifc.Name, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", ifc.Name, err))
			continue
		}
		return l, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("no Ethernet interface: is its driver among the image's modules?")
	}
	return nil, errors.Join(errs...)
}

// keep renews the lease at half its time, retrying every 10 s when the
// server does not answer, until ctx ends. A renewal that offers another
// address is logged and not applied: the node's address must not change
// under its agent.
func (l *dhcpLease) keep(ctx context.Context, log *slog.Logger) {
	defer l.client.Close()
	for {
		wait := max(l.lease.ACK.IPAddressLeaseTime(time.Hour)/2, 5*time.Second)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			renewed, err := l.client.Renew(rctx, l.lease)
			cancel()
			if err == nil {
				if !renewed.ACK.YourIPAddr.Equal(l.lease.ACK.YourIPAddr) {
					log.Error("DHCP renewal offers another address; keeping ours", "ours", l.lease.ACK.YourIPAddr.String(), "offered", renewed.ACK.YourIPAddr.String())
				} else {
					l.lease = renewed
				}
				log.Info("DHCP lease renewed", "iface", l.iface, "lease", l.lease.ACK.IPAddressLeaseTime(0).String())
				break
			}
			log.Warn("DHCP renewal failed; retrying", "iface", l.iface, "err", err)
			wait = 10 * time.Second
		}
	}
}

func linkUp(name string) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return err
	}
	rt, err := rtnl.Dial(nil)
	if err != nil {
		return err
	}
	defer rt.Close()
	return rt.LinkUp(ifc)
}

func dhcpIface(ctx context.Context, log *slog.Logger, name string) (_ *dhcpLease, err error) {
	if _, err := netboot.IfUp(name, 10*time.Second); err != nil {
		return nil, err
	}
	c, err := nclient4.New(name, nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	lease, err := c.Request(rctx)
	if err != nil {
		return nil, err
	}
	conf, err := netboot.GetNetConfFromPacketv4(lease.ACK)
	if err != nil {
		return nil, err
	}
	if err := netboot.ConfigureInterface(name, conf); err != nil {
		return nil, err
	}
	log.Info("network up", "iface", name, "addr", conf.Addresses[0].IPNet.String(), "routers", fmt.Sprint(conf.Routers),
		"dns", fmt.Sprint(conf.DNSServers), "lease", lease.ACK.IPAddressLeaseTime(0).String(), "server", lease.ACK.ServerIPAddr.String())
	return &dhcpLease{iface: name, client: c, lease: lease}, nil
}
