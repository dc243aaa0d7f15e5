package main

// The free ("vSphere Hypervisor") licence and the host's local clients.
//
// On a free host the API is read-only for every remote client, yet the host's own
// command-line clients (vim-cmd, vmkfstools, esxcli, run in its shell over SSH) change
// VMs: they are local clients of hostd and not subject to the licence check. Our shims
// (../esxshim) play them, through the same SOAP API as everybody else, so the simulator
// must tell them apart from ceso. They present a *local ticket*: a random secret the
// simulator writes, mode 0600, into its state directory at start (-local-ticket-file),
// sent in the X-Ceso-Local-Ticket header, and honoured only from a loopback peer. Only
// what runs on this machine as the state directory's owner (the sshd's forced command)
// can read it. ceso never sees it and never sends it: it does not appear in any client
// configuration, and ceso's tests prove the refusal with their own sessions.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const localTicketHeader = "X-Ceso-Local-Ticket"

// freeLicense is what LicenseManager.licenses holds on a free-licensed ESXi 6.x host:
// edition key "esxBasic" (the key scripts such as ghettoVCB and William Lam's vGhetto
// test for), product name "VMware vSphere 6 Hypervisor", per-CPU-package costing, no
// expiry. The licence key itself is synthetic: a real host shows the key it was given.
var freeLicense = types.LicenseManagerLicenseInfo{
	LicenseKey: "00000-00000-00000-00000-0000F",
	EditionKey: "esxBasic",
	Name:       "VMware vSphere 6 Hypervisor",
	Total:      0,
	Used:       1,
	CostUnit:   "cpuPackage",
	Properties: []types.KeyAnyValue{
		{Key: "ProductName", Value: "VMware ESX Server"},
		{Key: "ProductVersion", Value: "6.0"},
		{Key: "count_disabled", Value: "This license is unlimited"},
		{Key: "feature", Value: types.KeyValue{Key: "vsmp:8", Value: "Up to 8-way virtual SMP"}},
	},
}

// setFreeLicense replaces vcsim's evaluation licence before the server starts serving.
func setFreeLicense(ref types.ManagedObjectReference) {
	lm := simulator.Map.Get(ref).(*simulator.LicenseManager)
	simulator.Map.WithLock(lm, func() {
		simulator.Map.Update(lm, []types.PropertyChange{
			{Name: "licenses", Val: []types.LicenseManagerLicenseInfo{freeLicense}},
		})
	})
}

func newLocalTicket() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// isLocalClient tells whether the request comes from one of the host's own clients: a
// loopback peer presenting the local ticket.
func (f *front) isLocalClient(r *http.Request) bool {
	if f.o.localTicket == "" {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return false
	}
	got := r.Header.Get(localTicketHeader)
	return subtle.ConstantTimeCompare([]byte(got), []byte(f.o.localTicket)) == 1
}

// restrictedFileWrite refuses changes to datastore files over HTTP on a free host
// (PUT, POST, DELETE, MOVE, COPY) for remote clients. Whether a real free host refuses
// /folder uploads is not documented; refusing is the conservative choice for a test bed,
// because a client that passes here then also works where the host does refuse (ceso's
// free-host path writes files over SSH). Reads (GET, HEAD) stay allowed.
func (f *front) restrictedFileWrite(w http.ResponseWriter, r *http.Request) bool {
	if !f.o.free || r.Method == http.MethodGet || r.Method == http.MethodHead || f.isLocalClient(r) {
		return false
	}
	http.Error(w, "RestrictedVersion: "+restrictedVersionMsg, http.StatusForbidden)
	return true
}

// writeSecretFile writes data readable by the owner only (tmp file + rename).
func writeSecretFile(path string, data []byte) error {
	tmp, err := ioutil.TempFile(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	name := tmp.Name()
	if err = tmp.Chmod(0o600); err == nil {
		if _, err = tmp.Write(data); err == nil {
			err = tmp.Close()
		}
	}
	if err != nil {
		tmp.Close()
		os.Remove(name)
		return err
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// prepareRegister lets RegisterVM_Task register a .vmx as a host does. vcsim insists on
// opening NAME.nvram and vmware.log next to it (files it would have created itself) and
// answers NotFound without them; a host needs only the .vmx (it creates the NVRAM at
// the first power-on). So when the .vmx exists, empty ones are created if missing.
func (inv *inventory) prepareRegister(ctx context.Context, req []byte) error {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), req)
	if err != nil {
		return err
	}
	rv, ok := m.Body.(*types.RegisterVM_Task)
	if !ok {
		return nil
	}
	dirs, err := inv.datastoreDirs(ctx)
	if err != nil {
		return err
	}
	vmx, err := localPath(dirs, rv.Path)
	if err != nil {
		return nil // vcsim answers
	}
	if fi, err := os.Stat(vmx); err != nil || fi.IsDir() {
		return nil
	}
	name := rv.Name
	if name == "" { // vcsim's default: the directory's name
		var p object.DatastorePath
		p.FromString(rv.Path)
		name = path.Dir(p.Path)
	}
	for _, f := range []string{name + ".nvram", "vmware.log"} {
		fh, err := os.OpenFile(filepath.Join(filepath.Dir(vmx), f), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fh.Close()
		} else if !os.IsExist(err) {
			return err
		}
	}
	return nil
}
