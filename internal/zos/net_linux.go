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

// networkUp brings the loopback interface up, then tries DHCPv4 on every
// Ethernet interface in turn and configures the first that gets a lease:
// address, default route, /etc/resolv.conf. It returns that interface's
// name.
func networkUp(ctx context.Context, log *slog.Logger) (string, error) {
	if err := linkUp("lo"); err != nil {
		return "", fmt.Errorf("bring lo up: %w", err)
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	var errs []error
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) != 6 {
			continue
		}
		if err := dhcpIface(ctx, log, ifc.Name); err != nil {
			log.Warn("no DHCP lease", "iface", ifc.Name, "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", ifc.Name, err))
			continue
		}
		return ifc.Name, nil
	}
	if len(errs) == 0 {
		return "", errors.New("no Ethernet interface: is its driver among the image's modules?")
	}
	return "", errors.Join(errs...)
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

func dhcpIface(ctx context.Context, log *slog.Logger, name string) error {
	if _, err := netboot.IfUp(name, 10*time.Second); err != nil {
		return err
	}
	c, err := nclient4.New(name, nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	lease, err := c.Request(ctx)
	if err != nil {
		return err
	}
	conf, err := netboot.GetNetConfFromPacketv4(lease.ACK)
	if err != nil {
		return err
	}
	if err := netboot.ConfigureInterface(name, conf); err != nil {
		return err
	}
	log.Info("network up", "iface", name, "addr", conf.Addresses[0].IPNet.String(), "routers", fmt.Sprint(conf.Routers),
		"dns", fmt.Sprint(conf.DNSServers), "lease", lease.ACK.IPAddressLeaseTime(0).String(), "server", lease.ACK.ServerIPAddr.String())
	return nil
}
