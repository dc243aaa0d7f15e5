package main

// The host's local command-line clients, as seen in an ESXi shell over SSH: vim-cmd,
// vmkfstools and esxcli. cesosim is a multi-call binary: started under one of these
// names (simctl links them into the SSH side's PATH) it is that client instead of the
// simulator. Like the real ones, which are local clients of hostd, they act on the
// running simulator through its SOAP API, so the API view and the shell view of the
// host always agree: a vmid is the VM's moref value, paths are the same files.
//
// They find the simulator through $CESO_SIM_STATE (url, user, password, cert.pem,
// local-ticket, written by simctl and cesosim) and present the local ticket, which lets
// them write on a free-licensed host (license.go).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/ioutil"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
)

// shimTools maps the names the binary answers to onto their implementations.
var shimTools = map[string]func(*shimHost, []string) int{
	"vim-cmd":    vimCmd,
	"vmkfstools": vmkfstools,
	"esxcli":     esxcli,
}

// runShim runs the client named by argv[0] and reports whether it was one.
func runShim() (int, bool) {
	tool := filepath.Base(os.Args[0])
	run, ok := shimTools[tool]
	if !ok {
		return 0, false
	}
	ctx := context.Background()
	h, err := dialShim(ctx, os.Getenv("CESO_SIM_STATE"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot reach hostd: %v\n", tool, err)
		return 1, true
	}
	defer h.close()
	h.tool, h.out, h.errOut = tool, os.Stdout, os.Stderr
	return run(h, os.Args[1:]), true
}

// shimHost is one local client's connection to the simulator.
type shimHost struct {
	ctx    context.Context
	c      *vim25.Client
	base   string // scheme://host:port
	http   *http.Client
	state  string
	tool   string
	out    io.Writer
	errOut io.Writer
	// readLocal, when set, reads datastore files from disk instead of over /folder
	// (the simulator's own hooks, register.go).
	readLocal func(dsPath string) ([]byte, error)
}

// ticketTransport adds the local ticket to every request.
type ticketTransport struct {
	base   http.RoundTripper
	ticket string
}

func (t *ticketTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(localTicketHeader, t.ticket)
	return t.base.RoundTrip(r)
}

func readStateFile(state, name string) (string, error) {
	b, err := ioutil.ReadFile(filepath.Join(state, name))
	return strings.TrimRight(string(b), "\r\n"), err
}

// dialShim logs in to the simulator of the state directory as a local client.
func dialShim(ctx context.Context, state string) (*shimHost, error) {
	if state == "" {
		return nil, fmt.Errorf("CESO_SIM_STATE is not set")
	}
	var vals [4]string
	for i, name := range []string{"url", "user", "password", "local-ticket"} {
		v, err := readStateFile(state, name)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	u, err := soap.ParseURL(vals[0])
	if err != nil {
		return nil, err
	}
	sc := soap.NewClient(u, false)
	if u.Scheme == "https" {
		if err := sc.SetRootCAs(filepath.Join(state, "cert.pem")); err != nil {
			return nil, err
		}
	}
	sc.Client.Transport = &ticketTransport{base: sc.Client.Transport, ticket: vals[3]}
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, err
	}
	if err := session.NewManager(c).Login(ctx, url.UserPassword(vals[1], vals[2])); err != nil {
		return nil, err
	}
	return &shimHost{ctx: ctx, c: c, base: u.Scheme + "://" + u.Host, http: &sc.Client, state: state}, nil
}

func (h *shimHost) close() { _ = session.NewManager(h.c).Logout(h.ctx) }

// ---- faults as the host's clients print them ----

// vmodlFaults live in the vmodl.fault namespace; every other fault is vim.fault.X.
var vmodlFaults = map[string]bool{
	"InvalidArgument": true, "InvalidRequest": true, "InvalidType": true,
	"ManagedObjectNotFound": true, "MethodNotFound": true, "NotImplemented": true,
	"NotSupported": true, "RequestCanceled": true, "SecurityError": true,
	"SystemError": true, "HostCommunication": true, "HostNotConnected": true,
	"HostNotReachable": true, "InvalidCollectorVersion": true, "InvalidProperty": true,
}

func faultNamespace(name string) string {
	if vmodlFaults[name] {
		return "vmodl.fault." + name
	}
	return "vim.fault." + name
}

// faultOf extracts the fault name and message of a failed call or task.
func faultOf(err error) (name, msg string) {
	name, msg = "SystemError", err.Error()
	switch e := err.(type) {
	case task.Error:
		name, msg = faultTypeName(e.Fault()), e.LocalizedMessage
	default:
		if soap.IsSoapFault(err) {
			sf := soap.ToSoapFault(err)
			name, msg = faultTypeName(sf.VimFault()), sf.String
		} else if soap.IsVimFault(err) {
			name = faultTypeName(soap.ToVimFault(err))
		}
	}
	if msg == "" || strings.HasPrefix(msg, "*types.") { // vcsim's task faults carry the Go type name
		msg = defaultFaultMsg[name]
		if msg == "" {
			msg = "A general system error occurred: " + name
		}
	}
	return name, msg
}

// faultTypeName is the fault's WSDL type name (vcsim decodes some as values, some as
// pointers).
func faultTypeName(f interface{}) string {
	if f == nil {
		return "SystemError"
	}
	t := reflect.TypeOf(f)
	if t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	return t.Name()
}

// printFault writes a fault block the way vim-cmd does (its exit status stays 0). The
// message is printed between quotes as is: quotes inside it are not escaped.
func (h *shimHost) printFault(name, msg string) {
	fmt.Fprintf(h.out, "(%s) {\n   faultCause = (vmodl.MethodFault) null,\n   msg = \"%s\"\n}\n",
		faultNamespace(name), msg)
}

// defaultFaultMsg holds the host's default messages of the faults vcsim sends without one.
var defaultFaultMsg = map[string]string{
	"InvalidPowerState":     "The attempted operation cannot be performed in the current state.",
	"InvalidState":          "The operation is not allowed in the current state.",
	"NotFound":              "The object or item referred to could not be found.",
	"FileNotFound":          "The system cannot find the file specified",
	"FileLocked":            "Unable to access file since it is locked",
	"AlreadyExists":         "The specified key, name, or identifier already exists.",
	"ToolsUnavailable":      "Cannot complete operation because VMware Tools is not running in this virtual machine.",
	"RestrictedVersion":     restrictedVersionMsg,
	"NotSupported":          notSupportedMsg,
	"InvalidArgument":       "A specified parameter was not correct: ",
	"ManagedObjectNotFound": "The object has already been deleted or has not been completely created",
}

// Real hostd's message when a moref vanished under a client.
func objectGoneMsg(id string) string {
	return fmt.Sprintf("The object 'vim.VirtualMachine:%s' has already been deleted or has not been completely created", id)
}

// ---- fault mode for tests: $CESO_SIM_STATE/shim-faults ----
//
// One rule per line: TOOL FIRST-ARG FAULT [COUNT [MESSAGE…]], e.g.
//   vim-cmd vmsvc/getallvms ManagedObjectNotFound 2
//   vmkfstools -i FileLocked 1 Failed to lock the file (16392)
// COUNT defaults to 1, -1 = until removed. A matching rule makes the command fail that
// way without acting: vim-cmd prints the fault block (exit status 0), the others an
// error line and exit status 1. `simctl shim-fault LINE` appends a rule.

type shimFault struct{ name, msg string }

func (h *shimHost) takeShimFault(first string) *shimFault {
	path := filepath.Join(h.state, "shim-faults")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX) != nil {
		return nil
	}
	var lines []string
	var hit *shimFault
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if hit != nil || len(fields) < 3 || fields[0] != h.tool || fields[1] != first {
			lines = append(lines, line)
			continue
		}
		count := 1
		if len(fields) > 3 {
			count, _ = strconv.Atoi(fields[3])
		}
		hit = &shimFault{name: fields[2]}
		if len(fields) > 4 {
			hit.msg = strings.Join(fields[4:], " ")
		}
		if count > 1 || count < 0 {
			if count > 1 {
				count--
			}
			rest := ""
			if len(fields) > 4 {
				rest = " " + hit.msg
			}
			lines = append(lines, fmt.Sprintf("%s %s %s %d%s", fields[0], fields[1], fields[2], count, rest))
		}
	}
	if hit == nil {
		return nil
	}
	_ = f.Truncate(0)
	_, _ = f.Seek(0, io.SeekStart)
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
	return hit
}
