// Command cesosim runs govmomi's vSphere simulator (vcsim, govmomi 0.24.2 as packaged by
// Debian) as the test bed for ceso's tools, with the behaviours of a real standalone ESXi
// host that vcsim lacks (see ../README.md): NotSupported for vCenter-only methods, the
// free-license RestrictedVersion fault, authenticated datastore HTTP access, disk files
// laid out as descriptor + flat extent, locked disks of running VMs, server-side paging of
// RetrievePropertiesEx, plus counters and fault injection for tests under /_ceso/.
//
// It only ever listens on loopback: it is a test fixture with well-known credentials.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
)

// options holds the command line; see usage() and README.md.
type options struct {
	model           string
	listen          string
	urlFile         string
	user            string
	password        string
	passwordFile    string
	useTLS          bool
	thumbprintFile  string
	certFile        string
	vms             int
	delayMS         int
	fillMiB         int
	vmSpec          string
	free            bool
	license         string
	localTicket     string // the local-client ticket (localclient.go); "" = none
	localTicketFile string
	dir             string
	pageSize        int
	sessionIdle     time.Duration
	trace           bool
	lenient         bool
	noDynamicPCI    bool
}

func parseFlags() *options {
	o := &options{}
	flag.StringVar(&o.model, "model", "esx", "inventory model: esx (standalone host, apiType HostAgent) or vpx (vCenter)")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "loopback address to listen on; port 0 picks a free port")
	flag.StringVar(&o.urlFile, "url-file", "", "once listening, write the SDK URL to this file (atomically)")
	flag.StringVar(&o.user, "user", "root", "the only user name Login accepts")
	flag.StringVar(&o.password, "password", "ceso-sim-pass", "the only password Login accepts")
	flag.StringVar(&o.passwordFile, "password-file", "", "read the password from this file instead (keeps it out of ps)")
	flag.BoolVar(&o.useTLS, "tls", false, "serve HTTPS with a self-signed certificate generated at start")
	flag.StringVar(&o.thumbprintFile, "thumbprint-file", "", "with -tls: write the certificate's SHA-256 thumbprint here")
	flag.StringVar(&o.certFile, "cert-file", "", "with -tls: write the certificate (PEM) here")
	flag.IntVar(&o.vms, "vms", 2, "number of generated VMs in the inventory")
	flag.IntVar(&o.delayMS, "delay", 0, "milliseconds added to every SOAP call (simulated latency)")
	flag.IntVar(&o.fillMiB, "fill-mib", 0, "MiB of deterministic pseudo-random data written into each disk's flat file")
	flag.StringVar(&o.vmSpec, "vm-spec", "", "JSON file listing extra VMs to create at start")
	flag.BoolVar(&o.free, "free", false, "same as -license free")
	flag.StringVar(&o.license, "license", "eval", "host licence: eval (writes allowed, vcsim's evaluation licence) or free (vSphere Hypervisor: API writes fail with RestrictedVersion)")
	flag.StringVar(&o.localTicketFile, "local-ticket-file", "", "write a fresh local-client ticket here (mode 0600): loopback requests carrying it in X-Ceso-Local-Ticket may write on a free host, as the host's own vim-cmd does")
	flag.StringVar(&o.dir, "dir", "", "parent directory for the datastore directories (default $TMPDIR)")
	flag.IntVar(&o.pageSize, "page-size", 100, "server-side page size of RetrievePropertiesEx (0: never page, like vcsim)")
	flag.DurationVar(&o.sessionIdle, "session-idle", 0, "end sessions idle this long, e.g. 30m like ESXi (0: never)")
	flag.BoolVar(&o.trace, "trace", false, "log every SOAP request and response to stderr")
	flag.BoolVar(&o.noDynamicPCI, "no-dynamic-passthrough", false, "QueryConfigTarget lists no dynamicPassthrough devices (an ESXi before 7.0)")
	flag.BoolVar(&o.lenient, "lenient", false, "debugging only: accept requests that break the WSDL schema (vcsim's own leniency)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [flags]\n\nflags:\n", filepath.Base(os.Args[0]))
		flag.PrintDefaults()
	}
	flag.Parse()
	return o
}

func (o *options) validate() error {
	if flag.NArg() != 0 {
		return fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if o.model != "esx" && o.model != "vpx" {
		return fmt.Errorf("-model must be esx or vpx, not %q", o.model)
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("-listen %q: %v", o.listen, err)
	}
	// A fixture with a well-known password must never be reachable from other hosts.
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-listen %q: only loopback addresses are allowed", o.listen)
	}
	switch o.license {
	case "eval":
		if o.free {
			o.license = "free"
		}
	case "free":
		o.free = true
	default:
		return fmt.Errorf("-license must be eval or free, not %q", o.license)
	}
	if o.passwordFile != "" {
		b, err := ioutil.ReadFile(o.passwordFile)
		if err != nil {
			return err
		}
		o.password = strings.TrimRight(string(b), "\r\n")
	}
	if o.user == "" || o.password == "" {
		return fmt.Errorf("-user and -password must not be empty")
	}
	if o.vms < 0 || o.fillMiB < 0 || o.delayMS < 0 || o.pageSize < 0 || o.sessionIdle < 0 {
		return fmt.Errorf("-vms, -fill-mib, -delay, -page-size and -session-idle must not be negative")
	}
	return nil
}

func main() {
	// Started as vim-cmd, vmkfstools or esxcli: be that host client (shim.go).
	if code, ok := runShim(); ok {
		os.Exit(code)
	}
	log.SetPrefix("cesosim: ")
	if os.Getenv("GOGC") == "" {
		// A simulator's heap is small and short-lived garbage dominates (every answer
		// is a fresh object graph, encoded once): collect less often than Go's
		// default of 100%, which cost a fifth of the CPU of a big listing.
		debug.SetGCPercent(400)
	}
	o := parseFlags()
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "cesosim: %v\nTry 'cesosim -h' for more information.\n", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		log.Printf("%v", err)
		os.Exit(1)
	}
}

func run(o *options) error {
	start := time.Now()
	simulator.Trace = o.trace
	simulator.SessionIdleTimeout = o.sessionIdle

	// Registered first: a stop request during a long startup must still clean up
	// (the buffered signal is picked up once the server is running).
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	specs, err := loadVMSpecs(o.vmSpec)
	if err != nil {
		return err
	}

	// vcsim puts each datastore in ioutil.TempDir("", …); TMPDIR is its only knob.
	// A tmpfs here makes startup with thousands of VMs several times faster.
	if o.dir != "" {
		if err := os.MkdirAll(o.dir, 0o700); err != nil {
			return err
		}
		os.Setenv("TMPDIR", o.dir)
	}

	m := newModel(o)
	if err := m.Create(); err != nil {
		m.Remove()
		return fmt.Errorf("creating the %s model: %v", o.model, err)
	}
	defer func() {
		t := time.Now()
		m.Remove() // deletes the datastore directories
		log.Printf("datastores removed in %s", time.Since(t).Round(time.Millisecond))
	}()
	log.Printf("model %s with %d generated VMs created in %s", o.model, o.vms, time.Since(start).Round(time.Millisecond))

	// An in-process client: same code paths as a remote one, but no HTTP and no session.
	ctx := context.Background()
	c, err := vim25.NewClient(ctx, m.Service)
	if err != nil {
		return err
	}
	inv := &inventory{client: c, esx: o.model == "esx"}
	installPCI(!o.noDynamicPCI) // pci.go; before -vm-spec VMs take devices
	installNetwork()            // netsys.go
	versionDVPortgroups()       // pools.go
	// capacity.go: -host-memory-mib, -datastore-gib…, and each host's own hardware uuid
	if err := installCapacity(); err != nil {
		return err
	}

	if err := inv.createVMs(ctx, specs, o.fillMiB); err != nil {
		return err
	}
	if err := inv.materializeAllDisks(ctx, o.fillMiB); err != nil {
		return err
	}
	vmCount := inv.vmCount(ctx)
	log.Printf("%d VMs and their disk files ready after %s", vmCount, time.Since(start).Round(time.Millisecond))

	if o.free {
		setFreeLicense(*c.ServiceContent.LicenseManager)
	}
	if o.localTicketFile != "" {
		if o.localTicket, err = newLocalTicket(); err != nil {
			return err
		}
		if err := writeSecretFile(o.localTicketFile, []byte(o.localTicket+"\n")); err != nil {
			return err
		}
	}

	m.Service.Listen = &url.URL{Host: o.listen, User: url.UserPassword(o.user, o.password)}
	var thumbprint string
	if o.useTLS {
		cert, pemBytes, tp, err := selfSignedCertificate()
		if err != nil {
			return err
		}
		thumbprint = tp
		m.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		if o.certFile != "" {
			if err := writeFileAtomic(o.certFile, pemBytes); err != nil {
				return err
			}
		}
	}

	srv := m.Service.NewServer()
	front := newFront(o, srv.Server.Config.Handler, m.Service, inv)
	// NewServer has already started serving vcsim's own mux. Nothing can connect before
	// the URL file below exists, so replacing the handler here is not observable; it is the
	// only way to put our interceptors in front of vcsim's fixed routes.
	srv.Server.Config.Handler = front

	sdk := *srv.URL
	sdk.User = nil // the URL file is read by tests; credentials travel separately
	log.Printf("serving %s (model %s, %d VMs) after %s",
		sdk.String(), o.model, vmCount, time.Since(start).Round(time.Millisecond))
	if o.useTLS && o.thumbprintFile != "" {
		if err := writeFileAtomic(o.thumbprintFile, []byte(thumbprint+"\n")); err != nil {
			return err
		}
	}
	if o.urlFile != "" {
		if err := writeFileAtomic(o.urlFile, []byte(sdk.String()+"\n")); err != nil {
			return err
		}
	}

	s := <-sig
	log.Printf("%s: shutting down", s)

	if o.localTicketFile != "" {
		_ = os.Remove(o.localTicketFile)
	}
	if o.urlFile != "" {
		_ = os.Remove(o.urlFile) // a stale URL would point the next test at a dead port
	}
	// Close waits for handlers; a WaitForUpdatesEx without maxWaitSeconds never returns,
	// so give in-flight calls a moment and then leave anyway.
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		srv.CloseClientConnections()
	}
	return nil
}

// newModel picks vcsim's model and sizes it so that -vms is the total number of VMs.
func newModel(o *options) *simulator.Model {
	var m *simulator.Model
	if o.model == "esx" {
		m = simulator.ESX()
	} else {
		m = simulator.VPX()
		// Model.Machine counts VMs per resource pool; without the standalone host the
		// cluster's root pool is the only one, so -vms means the same in both models.
		m.Host = 0
	}
	m.Machine = o.vms
	return m
}

// writeFileAtomic makes readers see either no file or the whole file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := ioutil.TempFile(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
