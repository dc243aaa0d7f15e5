package main

// vim-cmd, the host's hostd client (shim.go). Output formats follow real ESXi 6.x/7.x
// (docs/esxi.md, ESXI-FACTS "Free-licensed ESXi over SSH").

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vimSub is one vim-cmd command: its minimum argument count, usage and body.
type vimSub struct {
	minArgs int
	usage   string
	run     func(h *shimHost, args []string) int
}

var vimSubs map[string]vimSub

func init() {
	vimSubs = map[string]vimSub{
		"vmsvc/getallvms":          {0, "", (*shimHost).getAllVMs},
		"vmsvc/power.getstate":     {1, "vmid", (*shimHost).powerGetState},
		"vmsvc/power.on":           {1, "vmid", powerOp("Powering on VM:", (*object.VirtualMachine).PowerOn)},
		"vmsvc/power.off":          {1, "vmid", powerOp("Powering off VM:", (*object.VirtualMachine).PowerOff)},
		"vmsvc/power.reset":        {1, "vmid", powerOp("Reset VM:", (*object.VirtualMachine).Reset)},
		"vmsvc/power.suspend":      {1, "vmid", powerOp("Suspending VM:", (*object.VirtualMachine).Suspend)},
		"vmsvc/power.shutdown":     {1, "vmid", guestOp((*object.VirtualMachine).ShutdownGuest)},
		"vmsvc/power.reboot":       {1, "vmid", guestOp((*object.VirtualMachine).RebootGuest)},
		"vmsvc/snapshot.get":       {1, "vmid", (*shimHost).snapshotGet},
		"vmsvc/snapshot.create":    {1, "vmid [snapshotName] [snapshotDescription] [includeMemory] [quiesced]", (*shimHost).snapshotCreate},
		"vmsvc/snapshot.revert":    {2, "vmid snapshotId suppressPowerOn", (*shimHost).snapshotRevert},
		"vmsvc/snapshot.remove":    {2, "vmid snapshotId [removeChildren]", (*shimHost).snapshotRemove},
		"vmsvc/snapshot.removeall": {1, "vmid", (*shimHost).snapshotRemoveAll},
		"vmsvc/reload":             {1, "vmid", (*shimHost).reload},
		"vmsvc/unregister":         {1, "vmid", (*shimHost).unregister},
		"vmsvc/destroy":            {1, "vmid", (*shimHost).destroy},
		"solo/registervm":          {1, "vmx_path [name] [resourcepool]", (*shimHost).registerVM},
		"hostsvc/hostsummary":      {0, "", (*shimHost).hostSummary},
	}
}

func vimCmd(h *shimHost, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(h.errOut, "Commands available under /:\nhbrsvc/       hostsvc/      solo/         vmsvc/")
		return 1
	}
	sub, ok := vimSubs[args[0]]
	if !ok {
		fmt.Fprintf(h.errOut, "(vim.fault.NotFound) {\n   faultCause = (vmodl.MethodFault) null,\n   msg = \"Command not found: %s\"\n}\n", args[0])
		return 1
	}
	if len(args)-1 < sub.minArgs {
		fmt.Fprintf(h.errOut, "Insufficient arguments.\nUsage: %s %s\n", args[0], sub.usage)
		return 1
	}
	if f := h.takeShimFault(args[0]); f != nil {
		msg := f.msg
		if msg == "" && f.name == "ManagedObjectNotFound" && len(args) > 1 {
			msg = objectGoneMsg(args[1])
		} else if msg == "" {
			msg = "Injected fault " + f.name
		}
		h.printFault(f.name, msg)
		return 0
	}
	return sub.run(h, args[1:])
}

// ---- helpers ----

// vm resolves a vmid (the moref value) or prints vim-cmd's NotFound block.
func (h *shimHost) vm(id string) (*object.VirtualMachine, *mo.VirtualMachine) {
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: id}
	var m mo.VirtualMachine
	err := property.DefaultCollector(h.c).RetrieveOne(h.ctx, ref,
		[]string{"name", "runtime.powerState", "snapshot", "config.files.vmPathName"}, &m)
	if err != nil {
		h.printFault("NotFound", fmt.Sprintf("Unable to find a VM corresponding to %q", id))
		return nil, nil
	}
	return object.NewVirtualMachine(h.c, ref), &m
}

// wait waits for a task and prints its fault, if any; it reports success.
func (h *shimHost) wait(t *object.Task, err error) bool {
	if err == nil {
		_, err = t.WaitForResult(h.ctx, nil)
	}
	if err != nil {
		h.printFault(faultOf(err))
		return false
	}
	return true
}

func powerOp(banner string, op func(*object.VirtualMachine, context.Context) (*object.Task, error)) func(*shimHost, []string) int {
	return func(h *shimHost, args []string) int {
		vm, _ := h.vm(args[0])
		if vm == nil {
			return 0
		}
		fmt.Fprintln(h.out, banner)
		h.wait(op(vm, h.ctx))
		return 0
	}
}

func guestOp(op func(*object.VirtualMachine, context.Context) error) func(*shimHost, []string) int {
	return func(h *shimHost, args []string) int {
		vm, _ := h.vm(args[0])
		if vm == nil {
			return 0
		}
		if err := op(vm, h.ctx); err != nil {
			h.printFault(faultOf(err))
		}
		return 0
	}
}

func powerText(s types.VirtualMachinePowerState) string {
	switch s {
	case types.VirtualMachinePowerStatePoweredOn:
		return "Powered on"
	case types.VirtualMachinePowerStateSuspended:
		return "Suspended"
	}
	return "Powered off"
}

// vmfsPath turns "[DS] dir/x.vmx" into "/vmfs/volumes/DS/dir/x.vmx" and back.
func vmfsPath(dsPath string) string {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return dsPath
	}
	return "/vmfs/volumes/" + p.Datastore + "/" + p.Path
}

func datastorePath(file string) (string, bool) {
	rest := strings.TrimPrefix(file, "/vmfs/volumes/")
	if rest == file {
		return "", false
	}
	i := strings.IndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", false
	}
	return "[" + rest[:i] + "] " + rest[i+1:], true
}

// moref values sort by their number ("vm-9" < "vm-12"), as vmids do on a host.
func vmidLess(a, b string) bool {
	na, ea := strconv.Atoi(a[strings.LastIndexByte(a, '-')+1:])
	nb, eb := strconv.Atoi(b[strings.LastIndexByte(b, '-')+1:])
	if ea == nil && eb == nil && na != nb {
		return na < nb
	}
	return a < b
}

// ---- commands ----

// getAllVMs prints the host's VM table: header, then one row per VM with columns padded
// with spaces. An annotation is printed as is, so one with newlines spans lines.
func (h *shimHost) getAllVMs(args []string) int {
	var vms []mo.VirtualMachine
	if err := h.retrieveAll("VirtualMachine", []string{"name", "config.files.vmPathName",
		"config.guestId", "config.version", "config.annotation"}, &vms); err != nil {
		h.printFault(faultOf(err))
		return 0
	}
	sort.Slice(vms, func(i, j int) bool { return vmidLess(vms[i].Self.Value, vms[j].Self.Value) })
	tw := tabwriter.NewWriter(h.out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "Vmid\tName\tFile\tGuest OS\tVersion\tAnnotation")
	for _, vm := range vms {
		if vm.Config == nil {
			fmt.Fprintf(h.errOut, "Skipping invalid VM '%s'\n", vm.Self.Value)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", vm.Self.Value, vm.Name, vm.Config.Files.VmPathName,
			vm.Config.GuestId, vm.Config.Version, vm.Config.Annotation)
	}
	_ = tw.Flush()
	return 0
}

func (h *shimHost) retrieveAll(kind string, props []string, dst interface{}) error {
	inv := &inventory{client: h.c}
	return inv.retrieveAll(h.ctx, kind, props, dst)
}

func (h *shimHost) powerGetState(args []string) int {
	_, m := h.vm(args[0])
	if m == nil {
		return 0
	}
	fmt.Fprintf(h.out, "Retrieved runtime info\n%s\n", powerText(m.Runtime.PowerState))
	return 0
}

// snapshotGet prints the snapshot tree: depth is the number of "--" pairs, VMware's
// "Desciption" typo included. Without snapshots only the first line.
func (h *shimHost) snapshotGet(args []string) int {
	_, m := h.vm(args[0])
	if m == nil {
		return 0
	}
	fmt.Fprintln(h.out, "Get Snapshot:")
	if m.Snapshot != nil {
		printSnapshotTree(h, m.Snapshot.RootSnapshotList, 1)
	}
	return 0
}

func printSnapshotTree(h *shimHost, list []types.VirtualMachineSnapshotTree, depth int) {
	for _, s := range list {
		lead := strings.Repeat("--", depth-1)
		if depth == 1 {
			fmt.Fprintln(h.out, "|-ROOT")
		} else {
			fmt.Fprintf(h.out, "%s|-CHILD\n", lead)
		}
		p := lead + "--"
		fmt.Fprintf(h.out, "%sSnapshot Name        : %s\n", p, s.Name)
		fmt.Fprintf(h.out, "%sSnapshot Id          : %d\n", p, s.Id)
		fmt.Fprintf(h.out, "%sSnapshot Desciption  : %s\n", p, s.Description)
		fmt.Fprintf(h.out, "%sSnapshot Created On  : %s\n", p, s.CreateTime.UTC().Format("1/2/2006 15:04:05"))
		fmt.Fprintf(h.out, "%sSnapshot State       : %s\n", p, strings.ToLower(powerText(s.State)))
		printSnapshotTree(h, s.ChildSnapshotList, depth+1)
	}
}

func findSnapshot(list []types.VirtualMachineSnapshotTree, id int32) *types.ManagedObjectReference {
	for _, s := range list {
		if s.Id == id {
			ref := s.Snapshot
			return &ref
		}
		if r := findSnapshot(s.ChildSnapshotList, id); r != nil {
			return r
		}
	}
	return nil
}

// snapshotRef resolves vmid + snapshotId or prints NotFound.
func (h *shimHost) snapshotRef(vmid, snapID string) *types.ManagedObjectReference {
	_, m := h.vm(vmid)
	if m == nil {
		return nil
	}
	n, err := strconv.ParseInt(snapID, 10, 32)
	var ref *types.ManagedObjectReference
	if err == nil && m.Snapshot != nil {
		ref = findSnapshot(m.Snapshot.RootSnapshotList, int32(n))
	}
	if ref == nil {
		h.printFault("NotFound", "The object or item referred to could not be found.")
	}
	return ref
}

func flag01(args []string, i int) bool {
	return len(args) > i && (args[i] == "1" || strings.EqualFold(args[i], "true"))
}

func (h *shimHost) snapshotCreate(args []string) int {
	vm, _ := h.vm(args[0])
	if vm == nil {
		return 0
	}
	name, desc := "", ""
	if len(args) > 1 {
		name = args[1]
	}
	if len(args) > 2 {
		desc = args[2]
	}
	fmt.Fprintln(h.out, "Create Snapshot:")
	h.wait(vm.CreateSnapshot(h.ctx, name, desc, flag01(args, 3), flag01(args, 4)))
	return 0
}

func (h *shimHost) snapshotRevert(args []string) int {
	ref := h.snapshotRef(args[0], args[1])
	if ref == nil {
		return 0
	}
	fmt.Fprintln(h.out, "Revert Snapshot:")
	suppress := flag01(args, 2)
	res, err := methods.RevertToSnapshot_Task(h.ctx, h.c, &types.RevertToSnapshot_Task{This: *ref, SuppressPowerOn: &suppress})
	if err != nil {
		h.printFault(faultOf(err))
		return 0
	}
	h.wait(object.NewTask(h.c, res.Returnval), nil)
	return 0
}

func (h *shimHost) snapshotRemove(args []string) int {
	ref := h.snapshotRef(args[0], args[1])
	if ref == nil {
		return 0
	}
	fmt.Fprintln(h.out, "Remove Snapshot:")
	children := flag01(args, 2)
	res, err := methods.RemoveSnapshot_Task(h.ctx, h.c, &types.RemoveSnapshot_Task{This: *ref, RemoveChildren: children})
	if err != nil {
		h.printFault(faultOf(err))
		return 0
	}
	h.wait(object.NewTask(h.c, res.Returnval), nil)
	return 0
}

func (h *shimHost) snapshotRemoveAll(args []string) int {
	vm, _ := h.vm(args[0])
	if vm == nil {
		return 0
	}
	fmt.Fprintln(h.out, "Remove All Snapshots:")
	h.wait(vm.RemoveAllSnapshot(h.ctx, nil))
	return 0
}

// requireOff prints InvalidPowerState unless the VM is powered off.
func (h *shimHost) requireOff(m *mo.VirtualMachine) bool {
	if m.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff {
		return true
	}
	h.printFault("InvalidPowerState", fmt.Sprintf(
		"The attempted operation cannot be performed in the current state (%s).", powerText(m.Runtime.PowerState)))
	return false
}

func (h *shimHost) unregister(args []string) int {
	vm, m := h.vm(args[0])
	if vm == nil || !h.requireOff(m) {
		return 0
	}
	if err := vm.Unregister(h.ctx); err != nil {
		h.printFault(faultOf(err))
	}
	return 0
}

func (h *shimHost) destroy(args []string) int {
	vm, m := h.vm(args[0])
	if vm == nil || !h.requireOff(m) {
		return 0
	}
	h.wait(vm.Destroy(h.ctx))
	return 0
}

// reload re-reads the VM's .vmx (after an edit in the shell) and applies it.
func (h *shimHost) reload(args []string) int {
	vm, m := h.vm(args[0])
	if vm == nil {
		return 0
	}
	if m.Config == nil {
		h.printFault("InvalidState", "The operation is not allowed in the current state.")
		return 0
	}
	vmx, err := h.readVMX(m.Config.Files.VmPathName)
	if err != nil {
		h.printFault("FileNotFound", err.Error())
		return 0
	}
	if err := h.applyVMX(vm, vmx); err != nil {
		h.printFault(faultOf(err))
	}
	return 0
}

// registerVM registers a .vmx given by its /vmfs/volumes path, applies what the .vmx
// says (hostd reads it; vcsim would not) and prints the new vmid.
func (h *shimHost) registerVM(args []string) int {
	dsPath, ok := datastorePath(args[0])
	if !ok {
		h.printFault("InvalidArgument", fmt.Sprintf("A specified parameter was not correct: %s", args[0]))
		return 0
	}
	vmx, err := h.readVMX(dsPath)
	if err != nil {
		h.printFault("NotFound", fmt.Sprintf("The object or item referred to could not be found: %s", args[0]))
		return 0
	}
	name := vmx.get("displayName")
	if len(args) > 1 { // the name given wins over the file's displayName
		name = args[1]
		vmx.vals["displayname"] = name
	}
	finder := find.NewFinder(h.c)
	dc, err := finder.DefaultDatacenter(h.ctx)
	if err == nil {
		finder.SetDatacenter(dc)
	}
	var folders *object.DatacenterFolders
	var pool *object.ResourcePool
	if err == nil {
		folders, err = dc.Folders(h.ctx)
	}
	if err == nil {
		pool, err = finder.DefaultResourcePool(h.ctx)
	}
	if err != nil {
		h.printFault(faultOf(err))
		return 0
	}
	t, err := folders.VmFolder.RegisterVM(h.ctx, dsPath, name, false, pool, nil)
	if err == nil {
		var info *types.TaskInfo
		if info, err = t.WaitForResult(h.ctx, nil); err == nil {
			ref := info.Result.(types.ManagedObjectReference)
			if err = h.applyVMX(object.NewVirtualMachine(h.c, ref), vmx); err == nil {
				fmt.Fprintln(h.out, ref.Value)
				return 0
			}
		}
	}
	h.printFault(faultOf(err))
	return 0
}

// hostSummary prints the HostSystem's summary as hostd's vim-cmd does: nested
// "(vim.Type) { … }" blocks, strings quoted, unset values <unset>. The hardware uuid is
// the one the API reports (summary.hardware.uuid: the same hostd answers both), which
// ceso compares to make sure SSH reaches the API's host. Only a standalone host has
// vim-cmd: any other number of hosts prints a fault block.
func (h *shimHost) hostSummary(args []string) int {
	var hosts []mo.HostSystem
	if err := h.retrieveAll("HostSystem", []string{"summary"}, &hosts); err != nil {
		h.printFault(faultOf(err))
		return 0
	}
	if len(hosts) != 1 {
		h.printFault("NotSupported", fmt.Sprintf("The operation is not supported on the object (%d hosts).", len(hosts)))
		return 0
	}
	s := hosts[0].Summary
	str := func(v string) string { return `"` + v + `"` }
	w := h.out
	fmt.Fprintln(w, "(vim.host.Summary) {")
	fmt.Fprintf(w, "   host = 'vim.HostSystem:%s',\n", hosts[0].Self.Value)
	if hw := s.Hardware; hw != nil {
		fmt.Fprintln(w, "   hardware = (vim.host.Summary.HardwareSummary) {")
		fmt.Fprintf(w, "      vendor = %s,\n", str(hw.Vendor))
		fmt.Fprintf(w, "      model = %s,\n", str(hw.Model))
		fmt.Fprintf(w, "      uuid = %s,\n", str(hw.Uuid))
		fmt.Fprintln(w, "      otherIdentifyingInfo = (vim.host.SystemIdentificationInfo) [")
		for i, o := range hw.OtherIdentifyingInfo {
			d := o.IdentifierType.GetElementDescription()
			fmt.Fprintln(w, "         (vim.host.SystemIdentificationInfo) {")
			fmt.Fprintf(w, "            identifierValue = %s,\n", str(o.IdentifierValue))
			fmt.Fprintln(w, "            identifierType = (vim.ElementDescription) {")
			fmt.Fprintf(w, "               label = %s,\n", str(d.Label))
			fmt.Fprintf(w, "               summary = %s,\n", str(d.Summary))
			fmt.Fprintf(w, "               key = %s\n", str(d.Key))
			fmt.Fprintln(w, "            }")
			if i < len(hw.OtherIdentifyingInfo)-1 {
				fmt.Fprintln(w, "         },")
			} else {
				fmt.Fprintln(w, "         }")
			}
		}
		fmt.Fprintln(w, "      ],")
		fmt.Fprintf(w, "      memorySize = %d,\n", hw.MemorySize)
		fmt.Fprintf(w, "      cpuModel = %s,\n", str(hw.CpuModel))
		fmt.Fprintf(w, "      cpuMhz = %d,\n", hw.CpuMhz)
		fmt.Fprintf(w, "      numCpuPkgs = %d,\n", hw.NumCpuPkgs)
		fmt.Fprintf(w, "      numCpuCores = %d,\n", hw.NumCpuCores)
		fmt.Fprintf(w, "      numCpuThreads = %d,\n", hw.NumCpuThreads)
		fmt.Fprintf(w, "      numNics = %d,\n", hw.NumNics)
		fmt.Fprintf(w, "      numHBAs = %d\n", hw.NumHBAs)
		fmt.Fprintln(w, "   },")
	} else {
		fmt.Fprintln(w, "   hardware = (vim.host.Summary.HardwareSummary) null,")
	}
	fmt.Fprintln(w, "   runtime = (vim.host.RuntimeInfo) {")
	if r := s.Runtime; r != nil {
		fmt.Fprintf(w, "      connectionState = %s,\n", str(string(r.ConnectionState)))
		fmt.Fprintf(w, "      powerState = %s,\n", str(string(r.PowerState)))
		fmt.Fprintf(w, "      inMaintenanceMode = %t\n", r.InMaintenanceMode)
	}
	fmt.Fprintln(w, "   },")
	fmt.Fprintln(w, "   config = (vim.host.Summary.ConfigSummary) {")
	fmt.Fprintf(w, "      name = %s,\n", str(s.Config.Name))
	fmt.Fprintf(w, "      port = %d,\n", s.Config.Port)
	if p := s.Config.Product; p != nil {
		fmt.Fprintln(w, "      product = (vim.AboutInfo) {")
		fmt.Fprintf(w, "         name = %s,\n", str(p.Name))
		fmt.Fprintf(w, "         fullName = %s,\n", str(p.FullName))
		fmt.Fprintf(w, "         vendor = %s,\n", str(p.Vendor))
		fmt.Fprintf(w, "         version = %s,\n", str(p.Version))
		fmt.Fprintf(w, "         build = %s,\n", str(p.Build))
		fmt.Fprintln(w, "         instanceUuid = <unset>,")
		fmt.Fprintf(w, "         apiType = %s,\n", str(p.ApiType))
		fmt.Fprintf(w, "         apiVersion = %s\n", str(p.ApiVersion))
		fmt.Fprintln(w, "      },")
	}
	fmt.Fprintln(w, "      vmotionEnabled = false")
	fmt.Fprintln(w, "   },")
	fmt.Fprintf(w, "   overallStatus = %s,\n", str(string(s.OverallStatus)))
	fmt.Fprintln(w, "   rebootRequired = false,")
	fmt.Fprintln(w, "   customValue = (vim.CustomFieldsManager.Value) [],")
	fmt.Fprintln(w, "   managementServerIp = <unset>,")
	fmt.Fprintln(w, "   maxEVCModeKey = <unset>,")
	fmt.Fprintln(w, "   currentEVCModeKey = <unset>,")
	fmt.Fprintln(w, "   gateway = <unset>")
	fmt.Fprintln(w, "}")
	return 0
}
