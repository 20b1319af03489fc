// SPDX-License-Identifier: GPL-2.0-or-later
//
// A one-shot resolver for the DNS tests, built CGO_ENABLED=0 and run with
// GODEBUG=netdns=go: Go's own resolver sends the queries (no libc at all).
// Resolves os.Args[1] (IPv4), then a TCP connect to a listener opened here
// on the first address. Prints one JSON line like resolve.c and keeps the
// sockets open until stdin closes.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	r := &net.Resolver{PreferGo: true}
	net.DefaultResolver.PreferGo = true
	ips, err := r.LookupIP(context.Background(), "ip4", os.Args[1])
	out := map[string]interface{}{"ok": err == nil, "pid": os.Getpid()}
	if err != nil {
		out["error"] = err.Error()
		b, _ := json.Marshal(out)
		fmt.Println(string(b))
		os.Exit(1)
	}
	addrs := []string{}
	for _, ip := range ips {
		addrs = append(addrs, ip.String())
	}
	out["addrs"] = addrs
	lst, err := net.Listen("tcp4", net.JoinHostPort(addrs[0], "0"))
	if err != nil {
		fmt.Printf("{\"ok\":false,\"error\":%q}\n", err.Error())
		os.Exit(1)
	}
	c, err := net.Dial("tcp4", lst.Addr().String())
	if err != nil {
		fmt.Printf("{\"ok\":false,\"error\":%q}\n", err.Error())
		os.Exit(1)
	}
	out["dport"] = lst.Addr().(*net.TCPAddr).Port
	out["sport"] = c.LocalAddr().(*net.TCPAddr).Port
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	io.Copy(io.Discard, os.Stdin)
	c.Close()
	lst.Close()
}
