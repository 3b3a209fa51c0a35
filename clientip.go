package fiberauth

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// Where a request comes from: the client IP (behind trusted proxies) and
// user agent, as the flows record them (Client).

// client is the request's Client, which WithClient bounds and copies out
// of Fiber's reused buffers.
func (a *Auth) client(c *fiber.Ctx) Client {
	return Client{IP: a.clientIP(c), UserAgent: c.Get(fiber.HeaderUserAgent)}
}

// parseTrustedProxies turns Config.TrustedProxies into prefixes.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("fiberauth: Config.TrustedProxies: %q is neither an IP nor a CIDR", s)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

func (a *Auth) trusted(ip netip.Addr) bool {
	for _, p := range a.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientIP is the socket's peer, unless that peer is a trusted proxy: then
// X-Forwarded-For is read from the right, skipping trusted proxies, and the
// first address that is not one is the client. A malformed entry stops the
// walk at the last address known good.
func (a *Auth) clientIP(c *fiber.Ctx) string {
	ip, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	ip = ip.Unmap()
	if len(a.proxies) == 0 || !a.trusted(ip) {
		return ip.String()
	}
	var hops []string
	for _, h := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(h), ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		ip = hop.Unmap()
		if !a.trusted(ip) {
			break
		}
	}
	return ip.String()
}
