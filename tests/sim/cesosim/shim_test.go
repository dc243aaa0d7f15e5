package main

// In-process tests of the free licence and the host's local clients (license.go,
// shim*.go): a real vcsim model behind our front end on 127.0.0.1, a remote client
// (govmomi, as ceso would be) and the shims connected like the SSH side's.

import (
	"bytes"
	"context"
	"io/ioutil"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const testTicket = "c0ffee0123456789c0ffee0123456789c0ffee0123456789c0ffee0123456789"

// testSim is one simulator for a test: its URL, state directory and inventory.
type testSim struct {
	t     *testing.T
	url   *url.URL
	state string
	inv   *inventory
	front *front
}

// startTestSim starts an esx model with two powered-on VMs, as cesosim's run() does.
func startTestSim(t *testing.T, license string) *testSim {
	t.Helper()
	ctx := context.Background()
	o := &options{model: "esx", user: "root", password: "test-pass", vms: 2, pageSize: 100,
		license: license, free: license == "free", localTicket: testTicket}
	dir := t.TempDir()
	old := os.Getenv("TMPDIR")
	os.Setenv("TMPDIR", dir)
	t.Cleanup(func() { os.Setenv("TMPDIR", old) })

	m := newModel(o)
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	c, err := vim25.NewClient(ctx, m.Service)
	if err != nil {
		t.Fatal(err)
	}
	inv := &inventory{client: c, esx: true}
	if err := inv.materializeAllDisks(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if o.free {
		setFreeLicense(*c.ServiceContent.LicenseManager)
	}
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(o.user, o.password)}
	srv := m.Service.NewServer()
	fr := newFront(o, srv.Server.Config.Handler, m.Service, inv)
	srv.Server.Config.Handler = fr
	t.Cleanup(func() { srv.Close(); m.Remove() })

	u := *srv.URL
	u.User = nil
	state := t.TempDir()
	for name, val := range map[string]string{"url": u.String(), "user": o.user,
		"password": o.password, "local-ticket": testTicket} {
		if err := ioutil.WriteFile(filepath.Join(state, name), []byte(val+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &testSim{t: t, url: &u, state: state, inv: inv, front: fr}
}

// remote logs in as a remote API client (ceso), optionally sending a local-ticket header.
func (s *testSim) remote(ticket string) *vim25.Client {
	s.t.Helper()
	ctx := context.Background()
	sc := soap.NewClient(s.url, false)
	if ticket != "" {
		sc.Client.Transport = &ticketTransport{base: sc.Client.Transport, ticket: ticket}
	}
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := session.NewManager(c).Login(ctx, url.UserPassword("root", "test-pass")); err != nil {
		s.t.Fatal(err)
	}
	return c
}

// run runs a shim command line like the SSH side does and returns stdout, stderr, status.
func (s *testSim) run(tool string, args ...string) (string, string, int) {
	s.t.Helper()
	h, err := dialShim(context.Background(), s.state)
	if err != nil {
		s.t.Fatal(err)
	}
	defer h.close()
	var out, errOut bytes.Buffer
	h.tool, h.out, h.errOut = tool, &out, &errOut
	code := shimTools[tool](h, args)
	return out.String(), errOut.String(), code
}

func (s *testSim) vm(c *vim25.Client, id string) mo.VirtualMachine {
	s.t.Helper()
	var m mo.VirtualMachine
	err := property.DefaultCollector(c).RetrieveOne(context.Background(),
		types.ManagedObjectReference{Type: "VirtualMachine", Value: id}, nil, &m)
	if err != nil {
		s.t.Fatalf("retrieving %s: %v", id, err)
	}
	return m
}

func restricted(err error) bool {
	if err == nil {
		return false
	}
	if soap.IsSoapFault(err) {
		_, ok := soap.ToSoapFault(err).VimFault().(types.RestrictedVersion)
		return ok
	}
	name, _ := faultOf(err)
	return name == "RestrictedVersion"
}

// taskErr runs a *_Task call and returns the call's or the task's error.
func taskErr(ctx context.Context, t *object.Task, err error) error {
	if err != nil {
		return err
	}
	_, err = t.WaitForResult(ctx, nil)
	return err
}

// apiWrites are the writes ceso makes over the API, each against the VM vm-9.
func apiWrites(c *vim25.Client) map[string]func(context.Context) error {
	vm := object.NewVirtualMachine(c, types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-9"})
	dc := object.NewDatacenter(c, types.ManagedObjectReference{Type: "Datacenter", Value: "ha-datacenter"})
	vdm := object.NewVirtualDiskManager(c)
	return map[string]func(context.Context) error{
		"PowerOffVM_Task": func(ctx context.Context) error { t, err := vm.PowerOff(ctx); return taskErr(ctx, t, err) },
		"ReconfigVM_Task": func(ctx context.Context) error {
			t, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{NumCPUs: 2})
			return taskErr(ctx, t, err)
		},
		"CreateSnapshot_Task": func(ctx context.Context) error {
			t, err := vm.CreateSnapshot(ctx, "s", "", false, false)
			return taskErr(ctx, t, err)
		},
		"Destroy_Task": func(ctx context.Context) error { t, err := vm.Destroy(ctx); return taskErr(ctx, t, err) },
		"UnregisterVM": func(ctx context.Context) error { return vm.Unregister(ctx) },
		"MakeDirectory": func(ctx context.Context) error {
			return object.NewFileManager(c).MakeDirectory(ctx, "[LocalDS_0] newdir", dc, true)
		},
		"CopyVirtualDisk_Task": func(ctx context.Context) error {
			t, err := vdm.CopyVirtualDisk(ctx, "[LocalDS_0] ha-host_VM0/disk1.vmdk", dc,
				"[LocalDS_0] copy.vmdk", dc, &types.VirtualDiskSpec{DiskType: "thin", AdapterType: "lsiLogic"}, false)
			return taskErr(ctx, t, err)
		},
		"RegisterVM_Task": func(ctx context.Context) error {
			folders, err := dc.Folders(ctx)
			if err != nil {
				return err
			}
			pool := object.NewResourcePool(c, types.ManagedObjectReference{Type: "ResourcePool", Value: "ha-root-pool"})
			t, err := folders.VmFolder.RegisterVM(ctx, "[LocalDS_0] x/x.vmx", "x", false, pool, nil)
			return taskErr(ctx, t, err)
		},
	}
}

func TestFreeLicenseRefusesEveryAPIWrite(t *testing.T) {
	s := startTestSim(t, "free")
	ctx := context.Background()
	for _, ticket := range []string{"", "wrong-" + testTicket[6:]} {
		c := s.remote(ticket)
		for name, write := range apiWrites(c) {
			if err := write(ctx); !restricted(err) {
				t.Errorf("ticket %q: %s: want RestrictedVersion, got %v", ticket, name, err)
			}
		}
		// Reads keep working and nothing changed.
		if m := s.vm(c, "vm-9"); m.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || m.Snapshot != nil {
			t.Errorf("ticket %q: vm-9 changed behind the refusals: %s, snapshot %v", ticket, m.Runtime.PowerState, m.Snapshot)
		}
	}
}

func TestFreeLicenseIsReported(t *testing.T) {
	for _, license := range []string{"free", "eval"} {
		t.Run(license, func(t *testing.T) {
			s := startTestSim(t, license)
			c := s.remote("")
			var lm mo.LicenseManager
			if err := property.DefaultCollector(c).RetrieveOne(context.Background(),
				*c.ServiceContent.LicenseManager, []string{"licenses"}, &lm); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"free": "esxBasic", "eval": "eval"}[license]
			if len(lm.Licenses) != 1 || lm.Licenses[0].EditionKey != want {
				t.Fatalf("licenses = %+v, want one with editionKey %s", lm.Licenses, want)
			}
		})
	}
}

// The same writes succeed with an evaluation licence: the refusals above come from the
// licence, not from the calls being wrong.
func TestEvalLicenseAllowsTheWrites(t *testing.T) {
	s := startTestSim(t, "eval")
	ctx := context.Background()
	c := s.remote("")
	for _, name := range []string{"CreateSnapshot_Task", "ReconfigVM_Task", "MakeDirectory", "PowerOffVM_Task", "Destroy_Task"} {
		if err := apiWrites(c)[name](ctx); err != nil {
			t.Errorf("%s with an eval licence: %v", name, err)
		}
	}
}

func TestLocalClientsWriteOnAFreeHost(t *testing.T) {
	s := startTestSim(t, "free")
	c := s.remote("")
	out, _, code := s.run("vim-cmd", "vmsvc/power.off", "vm-9")
	if code != 0 || out != "Powering off VM:\n" {
		t.Fatalf("power.off: status %d, output %q", code, out)
	}
	if st := s.vm(c, "vm-9").Runtime.PowerState; st != types.VirtualMachinePowerStatePoweredOff {
		t.Fatalf("the API says %s after vim-cmd power.off", st)
	}
	out, _, _ = s.run("vim-cmd", "vmsvc/power.getstate", "vm-9")
	if out != "Retrieved runtime info\nPowered off\n" {
		t.Errorf("power.getstate: %q", out)
	}
	out, _, _ = s.run("vim-cmd", "vmsvc/power.on", "vm-9")
	if out != "Powering on VM:\n" || s.vm(c, "vm-9").Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("power.on: %q", out)
	}
}

var faultBlock = regexp.MustCompile(`^\((vim|vmodl)\.fault\.([A-Za-z]+)\) \{\n   faultCause = \(vmodl\.MethodFault\) null,\n   msg = "(.*)"\n\}\n$`)

func TestVimCmdFaultBlocksExitZero(t *testing.T) {
	s := startTestSim(t, "free")
	cases := []struct {
		args   []string
		fault  string
		msgHas string
	}{
		{[]string{"vmsvc/power.getstate", "42"}, "vim.fault.NotFound", `Unable to find a VM corresponding to "42"`},
		{[]string{"vmsvc/power.on", "vm-9"}, "vim.fault.InvalidPowerState", "current state"},
		{[]string{"vmsvc/destroy", "vm-9"}, "vim.fault.InvalidPowerState", "(Powered on)"},
		{[]string{"vmsvc/unregister", "vm-9"}, "vim.fault.InvalidPowerState", "(Powered on)"},
		{[]string{"vmsvc/snapshot.revert", "vm-9", "7", "0"}, "vim.fault.NotFound", "could not be found"},
		{[]string{"vmsvc/power.shutdown", "vm-9"}, "vim.fault.ToolsUnavailable", "VMware Tools is not running"},
	}
	for _, c := range cases {
		out, _, code := s.run("vim-cmd", c.args...)
		// A banner ("Powering on VM:") may come first.
		m := faultBlock.FindStringSubmatch(strings.TrimPrefix(out, bannerOf(c.args[0])))
		if code != 0 || m == nil || m[1]+".fault."+m[2] != c.fault || !strings.Contains(m[3], c.msgHas) {
			t.Errorf("%v: status %d, output %q; want a %s block with %q", c.args, code, out, c.fault, c.msgHas)
		}
	}
	if _, errOut, code := s.run("vim-cmd", "vmsvc/power.on"); code == 0 || !strings.Contains(errOut, "Insufficient arguments") {
		t.Errorf("missing vmid: status %d, %q", code, errOut)
	}
}

// bannerOf is the line vim-cmd prints before acting, if any.
func bannerOf(cmd string) string {
	return map[string]string{"vmsvc/power.on": "Powering on VM:\n"}[cmd]
}

func TestGetAllVMsFormat(t *testing.T) {
	s := startTestSim(t, "free")
	ctx := context.Background()
	// An annotation with a newline spans lines, as on a host (done as a local client).
	h, err := dialShim(ctx, s.state)
	if err != nil {
		t.Fatal(err)
	}
	vm := object.NewVirtualMachine(h.c, types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-12"})
	tk, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{Annotation: "line one\nline (two)"})
	if err := taskErr(ctx, tk, err); err != nil {
		t.Fatal(err)
	}
	h.close()
	out, _, code := s.run("vim-cmd", "vmsvc/getallvms")
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) != 5 {
		t.Fatalf("status %d, output %q", code, out)
	}
	if !regexp.MustCompile(`^Vmid {3,}Name {3,}File {3,}Guest OS {3,}Version {3,}Annotation$`).MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	row := regexp.MustCompile(`^(vm-\d+) +(ha-host_VM\d) +(\[LocalDS_0\] ha-host_VM\d/ha-host_VM\d\.vmx) +otherGuest +vmx-\d+ +(.*)$`)
	m0, m1 := row.FindStringSubmatch(lines[1]), row.FindStringSubmatch(lines[2])
	if m0 == nil || m1 == nil || m0[1] != "vm-9" || m1[1] != "vm-12" || m1[4] != "line one" || lines[3] != "line (two)" {
		t.Errorf("rows %q", lines[1:])
	}
	// Columns line up: File starts at the same offset in the header and the rows.
	if strings.Index(lines[0], "File") != strings.Index(lines[1], "[LocalDS_0]") {
		t.Errorf("columns not aligned:\n%s", out)
	}
}

func TestSnapshotTreeFormat(t *testing.T) {
	s := startTestSim(t, "free")
	if out, _, _ := s.run("vim-cmd", "vmsvc/snapshot.get", "vm-9"); out != "Get Snapshot:\n" {
		t.Errorf("no snapshots: %q", out)
	}
	for _, args := range [][]string{{"s1", "first"}, {"s2", "second"}} {
		out, _, _ := s.run("vim-cmd", "vmsvc/snapshot.create", "vm-9", args[0], args[1], "0", "0")
		if out != "Create Snapshot:\n" {
			t.Fatalf("snapshot.create: %q", out)
		}
	}
	s.run("vim-cmd", "vmsvc/power.off", "vm-9")
	s.run("vim-cmd", "vmsvc/snapshot.create", "vm-9", "s3", "")
	out, _, _ := s.run("vim-cmd", "vmsvc/snapshot.get", "vm-9")
	date := regexp.MustCompile(`\d{1,2}/\d{1,2}/\d{4} \d{2}:\d{2}:\d{2}`)
	got := date.ReplaceAllString(out, "DATE")
	want := `Get Snapshot:
|-ROOT
--Snapshot Name        : s1
--Snapshot Id          : 1
--Snapshot Desciption  : first
--Snapshot Created On  : DATE
--Snapshot State       : powered on
--|-CHILD
----Snapshot Name        : s2
----Snapshot Id          : 2
----Snapshot Desciption  : second
----Snapshot Created On  : DATE
----Snapshot State       : powered on
----|-CHILD
------Snapshot Name        : s3
------Snapshot Id          : 3
------Snapshot Desciption  : 
------Snapshot Created On  : DATE
------Snapshot State       : powered off
`
	if got != want {
		t.Errorf("snapshot.get:\n%s\nwant:\n%s", got, want)
	}
	// revert to 1, remove 2 (and its child with removeChildren), then removeall.
	c := s.remote("")
	if out, _, _ := s.run("vim-cmd", "vmsvc/snapshot.revert", "vm-9", "1", "0"); out != "Revert Snapshot:\n" {
		t.Errorf("revert: %q", out)
	}
	if m := s.vm(c, "vm-9"); m.Snapshot == nil || m.Snapshot.CurrentSnapshot.Value != m.Snapshot.RootSnapshotList[0].Snapshot.Value {
		t.Errorf("revert did not make s1 current")
	}
	if out, _, _ := s.run("vim-cmd", "vmsvc/snapshot.remove", "vm-9", "2", "1"); out != "Remove Snapshot:\n" {
		t.Errorf("remove: %q", out)
	}
	if m := s.vm(c, "vm-9"); len(m.Snapshot.RootSnapshotList) != 1 || len(m.Snapshot.RootSnapshotList[0].ChildSnapshotList) != 0 {
		t.Errorf("remove 2 with children left %+v", m.Snapshot.RootSnapshotList)
	}
	if out, _, _ := s.run("vim-cmd", "vmsvc/snapshot.removeall", "vm-9"); out != "Remove All Snapshots:\n" {
		t.Errorf("removeall: %q", out)
	}
	if m := s.vm(c, "vm-9"); m.Snapshot != nil {
		t.Errorf("snapshots left after removeall")
	}
}

// writeDatastoreFile writes a file into the simulator's datastore directly (as an edit
// in the host's shell would).
func (s *testSim) writeDatastoreFile(rel, text string) {
	s.t.Helper()
	dirs, err := s.inv.datastoreDirs(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	p := filepath.Join(dirs["LocalDS_0"], rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		s.t.Fatal(err)
	}
	if err := ioutil.WriteFile(p, []byte(text), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func TestRegisterReloadUnregisterDestroy(t *testing.T) {
	s := startTestSim(t, "free")
	c := s.remote("")
	// A VM as ceso-mkvm writes it over SSH: a thin copy of a disk, then a .vmx.
	if _, errOut, code := s.run("vmkfstools", "-i", "/vmfs/volumes/LocalDS_0/ha-host_VM0/disk1.vmdk", "-d", "thin",
		"/vmfs/volumes/LocalDS_0/web/web.vmdk"); code != 1 || !strings.Contains(errOut, "Failed to clone disk") ||
		!strings.Contains(errOut, "FileLocked") {
		t.Errorf("cloning a running VM's disk: status %d, %q; want a locked-file failure", code, errOut)
	}
	s.run("vim-cmd", "vmsvc/power.off", "vm-9")
	if _, errOut, code := s.run("vmkfstools", "-i", "/vmfs/volumes/LocalDS_0/ha-host_VM0/disk1.vmdk", "-d", "thin",
		"/vmfs/volumes/LocalDS_0/web/web.vmdk"); code != 1 || !strings.Contains(errOut, "cannot find the file specified (FileNotFound)") {
		t.Errorf("cloning into a directory that does not exist: status %d, %q", code, errOut)
	}
	s.writeDatastoreFile("web/notes.txt", "mkdir web, as in the host's shell\n")
	out, errOut, code := s.run("vmkfstools", "-i", "/vmfs/volumes/LocalDS_0/ha-host_VM0/disk1.vmdk", "-d", "thin",
		"/vmfs/volumes/LocalDS_0/web/web.vmdk")
	if code != 0 || out != "Destination disk format: VMFS thin-provisioned\nCloning disk '/vmfs/volumes/LocalDS_0/ha-host_VM0/disk1.vmdk'...\nClone: 100% done.\n" {
		t.Fatalf("vmkfstools -i: status %d, %q %q", code, out, errOut)
	}
	s.writeDatastoreFile("web/web.vmx", `.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "13"
displayName = "web |22one|22"
guestOS = "ubuntu64Guest"
numvcpus = "2"
memSize = "2048"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web.vmdk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "static"
ethernet0.address = "00:50:56:00:00:01"
guestinfo.metadata = "e30="
guestinfo.metadata.encoding = "base64"
`)
	out, _, _ = s.run("vim-cmd", "solo/registervm", "/vmfs/volumes/LocalDS_0/web/web.vmx")
	id := strings.TrimSpace(out)
	if !regexp.MustCompile(`^vm-\d+$`).MatchString(id) {
		t.Fatalf("registervm printed %q, want the new vmid", out)
	}
	m := s.vm(c, id)
	devs := object.VirtualDeviceList(m.Config.Hardware.Device)
	disks := devs.SelectByType((*types.VirtualDisk)(nil))
	nics := devs.SelectByType((*types.VirtualEthernetCard)(nil))
	if m.Name != `web "one"` || m.Config.Hardware.NumCPU != 2 || m.Config.Hardware.MemoryMB != 2048 ||
		m.Config.GuestId != "ubuntu64Guest" || len(disks) != 1 || len(nics) != 1 ||
		m.Config.Files.VmPathName != "[LocalDS_0] web/web.vmx" {
		t.Fatalf("registered VM: name %q cpus %d mem %d guest %s disks %d nics %d path %q", m.Name,
			m.Config.Hardware.NumCPU, m.Config.Hardware.MemoryMB, m.Config.GuestId, len(disks), len(nics), m.Config.Files.VmPathName)
	}
	if f := disks[0].GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo).GetVirtualDeviceFileBackingInfo().FileName; f != "[LocalDS_0] web/web.vmdk" {
		t.Errorf("disk backing %q", f)
	}
	if mac := nics[0].(types.BaseVirtualEthernetCard).GetVirtualEthernetCard().MacAddress; mac != "00:50:56:00:00:01" {
		t.Errorf("NIC MAC %q", mac)
	}
	if v := extra(m, "guestinfo.metadata"); v != "e30=" {
		t.Errorf("guestinfo.metadata = %q", v)
	}
	// Registering it again: AlreadyExists.
	if out, _, _ := s.run("vim-cmd", "solo/registervm", "/vmfs/volumes/LocalDS_0/web/web.vmx"); !strings.HasPrefix(out, "(vim.fault.AlreadyExists) {") {
		t.Errorf("second registervm: %q", out)
	}

	// Edit the .vmx as ceso-set does, then reload.
	s.writeDatastoreFile("web/web.vmx", `displayName = "web |22one|22"
guestOS = "ubuntu64Guest"
numvcpus = "4"
memSize = "4096"
scsi0.virtualDev = "pvscsi"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web.vmdk"
guestinfo.userdata = "I2Nsb3VkLWNvbmZpZw=="
`)
	if out, _, _ := s.run("vim-cmd", "vmsvc/reload", id); out != "" {
		t.Errorf("reload printed %q", out)
	}
	m = s.vm(c, id)
	if m.Config.Hardware.NumCPU != 4 || m.Config.Hardware.MemoryMB != 4096 ||
		extra(m, "guestinfo.userdata") != "I2Nsb3VkLWNvbmZpZw==" || extra(m, "guestinfo.metadata") != "" ||
		len(object.VirtualDeviceList(m.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))) != 1 {
		t.Errorf("after reload: cpus %d mem %d userdata %q metadata %q", m.Config.Hardware.NumCPU,
			m.Config.Hardware.MemoryMB, extra(m, "guestinfo.userdata"), extra(m, "guestinfo.metadata"))
	}

	// unregister keeps the files; destroy deletes them.
	if out, _, _ := s.run("vim-cmd", "vmsvc/unregister", id); out != "" {
		t.Errorf("unregister printed %q", out)
	}
	if out, _, _ := s.run("vim-cmd", "vmsvc/power.getstate", id); !strings.HasPrefix(out, "(vim.fault.NotFound) {") {
		t.Errorf("getstate after unregister: %q", out)
	}
	out, _, _ = s.run("vim-cmd", "solo/registervm", "/vmfs/volumes/LocalDS_0/web/web.vmx", "web2")
	id2 := strings.TrimSpace(out)
	if id2 == id || s.vm(c, id2).Name != "web2" {
		t.Fatalf("re-register with a name: %q", out)
	}
	if out, _, _ := s.run("vim-cmd", "vmsvc/destroy", id2); out != "" {
		t.Errorf("destroy printed %q", out)
	}
	dirs, _ := s.inv.datastoreDirs(context.Background())
	if _, err := os.Stat(filepath.Join(dirs["LocalDS_0"], "web", "web.vmx")); !os.IsNotExist(err) {
		t.Errorf("destroy left web.vmx: %v", err)
	}
}

func extra(m mo.VirtualMachine, key string) string {
	for _, o := range m.Config.ExtraConfig {
		if v := o.GetOptionValue(); v.Key == key {
			s, _ := v.Value.(string)
			return s
		}
	}
	return ""
}

func TestVmkfstoolsCreateAndDelete(t *testing.T) {
	s := startTestSim(t, "free")
	dirs, _ := s.inv.datastoreDirs(context.Background())
	out, errOut, code := s.run("vmkfstools", "-c", "16M", "-d", "thin", "/vmfs/volumes/LocalDS_0/new.vmdk")
	if code != 0 || out != "Create: 100% done.\n" {
		t.Fatalf("-c: status %d %q %q", code, out, errOut)
	}
	fi, err := os.Stat(filepath.Join(dirs["LocalDS_0"], "new-flat.vmdk"))
	if err != nil || fi.Size() != 16<<20 {
		t.Fatalf("flat file after -c 16M: %v %v", fi, err)
	}
	if _, errOut, code := s.run("vmkfstools", "-U", "/vmfs/volumes/LocalDS_0/new.vmdk"); code != 0 {
		t.Fatalf("-U: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dirs["LocalDS_0"], "new.vmdk")); !os.IsNotExist(err) {
		t.Errorf("-U left the descriptor: %v", err)
	}
	for _, args := range [][]string{
		{"-i", "relative.vmdk", "-d", "thin", "/vmfs/volumes/LocalDS_0/x.vmdk"},
		{"-i", "/vmfs/volumes/LocalDS_0/a.vmdk", "-d", "sparse", "/vmfs/volumes/LocalDS_0/x.vmdk"},
		{"-Q", "/vmfs/volumes/LocalDS_0/x.vmdk"},
		{"-U"},
	} {
		if _, errOut, code := s.run("vmkfstools", args...); code != 1 || errOut == "" {
			t.Errorf("%v: status %d, %q; want a usage error", args, code, errOut)
		}
	}
}

func TestEsxcli(t *testing.T) {
	s := startTestSim(t, "free")
	out, _, code := s.run("esxcli", "system", "version", "get")
	if code != 0 || out != "   Product: VMware ESXi\n   Version: 6.5.0\n   Build: Releasebuild-5969303\n   Update: 0\n   Patch: 0\n" {
		t.Errorf("system version get: %d %q", code, out)
	}
	out, _, code = s.run("esxcli", "hardware", "pci", "list")
	block := regexp.MustCompile(`(?m)^(0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f])\n   Address: 0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f]\n`)
	if code != 0 || len(block.FindAllString(out, -1)) < 2 || !strings.Contains(out, "   Vendor ID: 0x8086\n") ||
		!strings.Contains(out, "   Passthru Capable: false\n") || !strings.Contains(out, "   Current Owner: VMkernel\n") {
		t.Errorf("hardware pci list: %d %q", code, out)
	}
	if _, errOut, code := s.run("esxcli", "network", "nic", "list"); code != 1 || !strings.Contains(errOut, "Unknown command or namespace") {
		t.Errorf("unknown namespace: %d %q", code, errOut)
	}
}

func TestShimFaultRules(t *testing.T) {
	s := startTestSim(t, "free")
	rules := "vim-cmd vmsvc/getallvms ManagedObjectNotFound 2\nvmkfstools -i FileLocked 1 Failed to lock the file (16392)\n"
	if err := ioutil.WriteFile(filepath.Join(s.state, "shim-faults"), []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		out, _, code := s.run("vim-cmd", "vmsvc/getallvms")
		if code != 0 || !strings.HasPrefix(out, "(vmodl.fault.ManagedObjectNotFound) {\n") {
			t.Errorf("getallvms #%d under the rule: %d %q", i+1, code, out)
		}
	}
	if out, _, _ := s.run("vim-cmd", "vmsvc/getallvms"); !strings.HasPrefix(out, "Vmid ") {
		t.Errorf("getallvms after the rule ran out: %q", out)
	}
	// Only the named command is affected.
	if out, _, _ := s.run("vim-cmd", "vmsvc/power.getstate", "vm-9"); !strings.HasPrefix(out, "Retrieved runtime info") {
		t.Errorf("power.getstate hit another command's rule: %q", out)
	}
	_, errOut, code := s.run("vmkfstools", "-i", "/vmfs/volumes/LocalDS_0/a.vmdk", "-d", "thin", "/vmfs/volumes/LocalDS_0/b.vmdk")
	if code != 1 || errOut != "Failed to lock the file (16392)\n" {
		t.Errorf("vmkfstools under the rule: %d %q", code, errOut)
	}
	rest, _ := ioutil.ReadFile(filepath.Join(s.state, "shim-faults"))
	if strings.TrimSpace(string(rest)) != "" {
		t.Errorf("rules left: %q", rest)
	}
}

func TestVMXParse(t *testing.T) {
	v, err := parseVMX("[ds] a/a.vmx", "displayName = \"a |22b|22 |7c c\"\nGuestInfo.X = \"1\"\n\n# comment\nnumvcpus=\"2\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if v.get("displayName") != `a "b" | c` || v.get("guestinfo.x") != "1" || v.get("NUMVCPUS") != "2" {
		t.Errorf("parsed %+v", v.vals)
	}
	if _, err := parseVMX("[ds] a/a.vmx", "displayName = \"a\"\nbroken line\n"); err == nil ||
		!strings.Contains(err.Error(), "line 2") {
		t.Errorf("a broken line: %v", err)
	}
}

func TestPathTranslation(t *testing.T) {
	for in, want := range map[string]string{
		"/vmfs/volumes/LocalDS_0/a b/c.vmx": "[LocalDS_0] a b/c.vmx",
		"/vmfs/volumes/datastore1/x.vmdk":   "[datastore1] x.vmdk",
	} {
		if got, ok := datastorePath(in); !ok || got != want {
			t.Errorf("datastorePath(%q) = %q, %v", in, got, ok)
		}
		if back := vmfsPath(want); back != in {
			t.Errorf("vmfsPath(%q) = %q", want, back)
		}
	}
	for _, bad := range []string{"relative.vmdk", "/vmfs/volumes/", "/vmfs/volumes/ds", "/vmfs/volumes/ds/", "/tmp/x"} {
		if _, ok := datastorePath(bad); ok {
			t.Errorf("datastorePath(%q) accepted", bad)
		}
	}
}

func TestExtraConfigReplacedAndRemovedLikeAHost(t *testing.T) {
	s := startTestSim(t, "eval")
	ctx := context.Background()
	c := s.remote("")
	vm := object.NewVirtualMachine(c, types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-9"})
	for _, opts := range [][]types.BaseOptionValue{
		{&types.OptionValue{Key: "guestinfo.a", Value: "1"}, &types.OptionValue{Key: "guestinfo.b", Value: "x"}},
		{&types.OptionValue{Key: "guestinfo.a", Value: "2"}},
		{&types.OptionValue{Key: "guestinfo.b", Value: ""}},
	} {
		tk, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: opts})
		if err := taskErr(ctx, tk, err); err != nil {
			t.Fatal(err)
		}
	}
	m := s.vm(c, "vm-9")
	count := map[string]int{}
	for _, o := range m.Config.ExtraConfig {
		count[o.GetOptionValue().Key]++
	}
	if count["guestinfo.a"] != 1 || extra(m, "guestinfo.a") != "2" || count["guestinfo.b"] != 0 || count["govcsim"] != 1 {
		t.Errorf("extraConfig after set, reset and remove: %v (a = %q)", count, extra(m, "guestinfo.a"))
	}
}

// The host's own clients' calls are counted apart from the tool's round trips.
func TestLocalClientCallsCountedApart(t *testing.T) {
	for _, delay := range []int{0, 50} {
		s := startTestSim(t, "free")
		f := s.front
		f.o.delayMS = delay
		f.stats.reset()
		start := time.Now()
		s.run("vim-cmd", "vmsvc/power.getstate", "vm-9")
		took := time.Since(start)
		f.stats.mu.Lock()
		soapTotal, local := f.stats.soapTotal, f.stats.localSOAP["RetrievePropertiesEx"]+f.stats.localSOAP["RetrieveProperties"]
		login := f.stats.localSOAP["Login"]
		f.stats.mu.Unlock()
		if soapTotal != 0 || login != 1 || local == 0 {
			t.Errorf("delay %d: soap_total %d, local Login %d, local retrievals %d", delay, soapTotal, login, local)
		}
		if delay > 0 && took > time.Duration(delay)*time.Millisecond {
			t.Errorf("a local client's calls were delayed: %s", took)
		}
		c := s.remote("")
		f.stats.reset()
		s.vm(c, "vm-9")
		f.stats.mu.Lock()
		if f.stats.soapTotal == 0 || len(f.stats.localSOAP) != 0 {
			t.Errorf("a remote client's call: soap_total %d, local %v", f.stats.soapTotal, f.stats.localSOAP)
		}
		f.stats.mu.Unlock()
	}
}

// On a free host /folder reads work and writes are refused, except for a local client.
func TestFreeLicenseFolderWrites(t *testing.T) {
	for _, license := range []string{"free", "eval"} {
		s := startTestSim(t, license)
		base := strings.TrimSuffix(s.url.String(), "/sdk") + "/folder/"
		req := func(method, file, ticket string) int {
			r, err := http.NewRequest(method, base+file+"?dsName=LocalDS_0", strings.NewReader("data"))
			if err != nil {
				t.Fatal(err)
			}
			r.SetBasicAuth("root", "test-pass")
			if ticket != "" {
				r.Header.Set(localTicketHeader, ticket)
			}
			res, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode
		}
		refused := 403
		if license == "eval" {
			refused = 0 // anything but 403
		}
		for _, m := range []string{"PUT", "POST", "DELETE"} {
			if got := req(m, "ha-host_VM0/new-"+m+".txt", ""); (got == 403) != (refused == 403) {
				t.Errorf("%s: %s without ticket: %d", license, m, got)
			}
			if got := req(m, "ha-host_VM0/new-"+m+".txt", "bad"); (got == 403) != (refused == 403) {
				t.Errorf("%s: %s with a wrong ticket: %d", license, m, got)
			}
		}
		if got := req("PUT", "ha-host_VM0/local.txt", testTicket); got != 200 {
			t.Errorf("%s: PUT by a local client: %d", license, got)
		}
		if got := req("GET", "ha-host_VM0/ha-host_VM0.vmx", ""); got != 200 {
			t.Errorf("%s: GET: %d", license, got)
		}
	}
}

// esxcli's passthrough and portgroup commands act through the API with its checks, on a
// free host, and refuse bad arguments as esxcli does (exit 1, "Error: …" on stderr).
func TestEsxcliPassthroughAndPortgroups(t *testing.T) {
	s := startTestSim(t, "free")
	installPCI(true)
	installNetwork()
	fails := func(want string, args ...string) {
		t.Helper()
		if out, errOut, code := s.run("esxcli", args...); code != 1 || !strings.Contains(errOut, want) || out != "" {
			t.Errorf("%v: %d %q %q; want exit 1 and %q", args, code, out, errOut, want)
		}
	}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, code := s.run("esxcli", args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: %d %q", args, code, errOut)
		}
		return out
	}
	pt := []string{"hardware", "pci", "pcipassthru"}
	fails("Missing required parameter -e|--enable", append(pt, "set", "-d", "0000:18:00.0")...)
	fails("Invalid option --bogus", append(pt, "set", "-d", "0000:18:00.0", "-e", "true", "--bogus")...)
	fails("Expected a boolean", append(pt, "set", "-d", "0000:18:00.0", "-e", "maybe")...)
	fails("Missing value", append(pt, "set", "-e", "true", "-d")...)
	fails("Unable to find a PCI device with address 0000:99:00.0", append(pt, "set", "--device-id=0000:99:00.0", "--enable=true")...)
	fails("does not support passthrough", append(pt, "set", "-d", "0000:00:00.0", "-e", "true")...)
	ok(append(pt, "set", "--device-id=0000:18:00.0", "--enable=true")...)
	if out := ok(append(pt, "list")...); !strings.Contains(out, "0000:18:00.0     true\n") {
		t.Errorf("pcipassthru list: %q", out)
	}
	if out := ok("hardware", "pci", "list"); !strings.Contains(out, "Configured Owner: VM Passthru\n   Current Owner: VMkernel\n") {
		t.Errorf("pci list after enable (not active before a reboot): %q", out)
	}

	pg := []string{"network", "vswitch", "standard", "portgroup"}
	fails("Missing required parameter -v|--vswitch-name", append(pg, "add", "-p", "web")...)
	fails("vSwitch9", append(pg, "add", "-p", "web", "-v", "vSwitch9")...)
	ok(append(pg, "add", "--portgroup-name=web", "--vswitch-name=vSwitch0")...)
	fails("already exists", append(pg, "add", "-p", "web", "-v", "vSwitch0")...)
	fails("Expected an integer", append(pg, "set", "-p", "web", "-v", "ten")...)
	fails("A specified parameter was not correct", append(pg, "set", "-p", "web", "--vlan-id=4096")...)
	fails("Unable to find portgroup nope", append(pg, "set", "-p", "nope", "-v", "10")...)
	ok(append(pg, "set", "-p", "web", "--vlan-id", "10")...)
	if out := ok(append(pg, "list")...); !strings.Contains(out, "web                     vSwitch0                     0       10\n") {
		t.Errorf("portgroup list: %q", out)
	}
	fails("is not on virtual switch vSwitch1", append(pg, "remove", "-p", "web", "-v", "vSwitch1")...)
	fails("in use", append(pg, "remove", "-p", "VM Network", "-v", "vSwitch0")...)
	ok(append(pg, "remove", "-p", "web", "-v", "vSwitch0")...)
	if out := ok(append(pg, "list")...); strings.Contains(out, "web ") {
		t.Errorf("portgroup list after remove: %q", out)
	}
}

// hostsvc/hostsummary prints the API's summary.hardware.uuid in the hardware block,
// and each simulator's host gets its own uuid (installCapacity), not vcsim's shared one.
func TestHostSummaryUUIDIsTheAPIsAndPerInstance(t *testing.T) {
	s := startTestSim(t, "free")
	ctx := context.Background()
	var before []mo.HostSystem
	c := s.remote("")
	if err := (&inventory{client: c}).retrieveAll(ctx, "HostSystem", []string{"summary.hardware"}, &before); err != nil || len(before) != 1 {
		t.Fatalf("hosts %d, %v", len(before), err)
	}
	vcsimUUID := before[0].Summary.Hardware.Uuid
	if err := installCapacity(); err != nil {
		t.Fatal(err)
	}
	var hosts []mo.HostSystem
	if err := (&inventory{client: c}).retrieveAll(ctx, "HostSystem", []string{"summary.hardware", "hardware.systemInfo"}, &hosts); err != nil {
		t.Fatal(err)
	}
	uuid := hosts[0].Summary.Hardware.Uuid
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(uuid) ||
		uuid == vcsimUUID || hosts[0].Hardware.SystemInfo.Uuid != uuid {
		t.Fatalf("uuid %q (vcsim's %q, systemInfo %q)", uuid, vcsimUUID, hosts[0].Hardware.SystemInfo.Uuid)
	}
	out, errOut, code := s.run("vim-cmd", "hostsvc/hostsummary")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "(vim.host.Summary) {\n") || !strings.HasSuffix(out, "\n}\n") {
		t.Fatalf("status %d, stderr %q, output %q", code, errOut, out)
	}
	// The uuid line directly in the hardware block, 6 spaces in; the only line of that form.
	hw := regexp.MustCompile(`(?m)^   hardware = \(vim\.host\.Summary\.HardwareSummary\) \{\n(?:      .*\n)*?      uuid = "([^"]*)",\n`)
	m := hw.FindStringSubmatch(out)
	if m == nil || m[1] != uuid || strings.Count(out, "      uuid = ") != 1 {
		t.Errorf("want uuid %q in:\n%s", uuid, out)
	}
	// Balanced blocks: every opening line has its closing line.
	depth := 0
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		tl := strings.TrimSpace(l)
		if strings.HasPrefix(tl, "}") || strings.HasPrefix(tl, "]") {
			depth--
		}
		if strings.HasSuffix(tl, "{") || strings.HasSuffix(tl, "[") {
			depth++
		}
	}
	if depth != 0 {
		t.Errorf("unbalanced output (depth %d):\n%s", depth, out)
	}
	// A second run picks another uuid: two simulators are two hosts.
	if err := installCapacity(); err != nil {
		t.Fatal(err)
	}
	out2, _, _ := s.run("vim-cmd", "hostsvc/hostsummary")
	if m2 := hw.FindStringSubmatch(out2); m2 == nil || m2[1] == uuid {
		t.Errorf("the same uuid twice: %q", uuid)
	}
}
