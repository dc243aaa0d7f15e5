package main

// Reading a .vmx the way hostd does on `vim-cmd solo/registervm` and `vmsvc/reload`.
// vcsim registers a VM without looking at its .vmx (an empty VM named after the
// directory); a real host takes the hardware and settings from the file, so the shim
// applies what the file says through ReconfigVM_Task.

import (
	"bufio"
	"fmt"
	"io/ioutil"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vmxFile holds a .vmx's settings; keys are lowercase (the format is case-insensitive).
type vmxFile struct {
	dsPath string // "[DS] dir/x.vmx"
	vals   map[string]string
	keys   []string // in file order, lowercase
}

func (v *vmxFile) get(key string) string { return v.vals[strings.ToLower(key)] }

var vmxLine = regexp.MustCompile(`^\s*([A-Za-z0-9_.:-]+)\s*=\s*"(.*)"\s*$`)

// parseVMX reads `key = "value"` lines; "|22" style escapes (pipe + two hex digits)
// stand for the byte they encode, as ESXi writes `"` and `|` inside values.
func parseVMX(dsPath, text string) (*vmxFile, error) {
	v := &vmxFile{dsPath: dsPath, vals: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ".encoding") {
			continue
		}
		m := vmxLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("%s line %d: not a key = \"value\" line", dsPath, n)
		}
		key := strings.ToLower(m[1])
		if _, dup := v.vals[key]; !dup {
			v.keys = append(v.keys, key)
		}
		v.vals[key] = vmxUnescape(m[2])
	}
	return v, sc.Err()
}

func vmxUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '|' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readVMX fetches a datastore file over the host's /folder endpoint with our session.
func (h *shimHost) readVMX(dsPath string) (*vmxFile, error) {
	b, err := h.readDatastoreFile(dsPath)
	if err != nil {
		return nil, err
	}
	return parseVMX(dsPath, string(b))
}

func (h *shimHost) readDatastoreFile(dsPath string) ([]byte, error) {
	if h.readLocal != nil {
		return h.readLocal(dsPath)
	}
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return nil, fmt.Errorf("not a datastore path: %q", dsPath)
	}
	u := h.base + "/folder/" + (&url.URL{Path: p.Path}).EscapedPath() + "?dsName=" + url.QueryEscape(p.Datastore)
	res, err := h.http.Get(u)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", vmfsPath(dsPath), res.Status)
	}
	return ioutil.ReadAll(res.Body)
}

// vmxExtraPrefixes are the ExtraConfig keys the shim carries from the .vmx into the
// VM's config (what ceso writes: cloud-init's guestinfo and its own tags).
var vmxExtraPrefixes = []string{"guestinfo.", "ceso."}

// applyVMX reconfigures vm to match the .vmx: name, CPUs, memory, guest OS,
// annotation, guestinfo/ceso ExtraConfig (keys gone from the file are removed), and the
// disks and NICs the VM does not have yet.
func (h *shimHost) applyVMX(vm *object.VirtualMachine, vmx *vmxFile) error {
	var m mo.VirtualMachine
	if err := property.DefaultCollector(h.c).RetrieveOne(h.ctx, vm.Reference(),
		[]string{"config"}, &m); err != nil {
		return err
	}
	spec := types.VirtualMachineConfigSpec{
		Name:       vmx.get("displayName"),
		GuestId:    guestIDOfVMX(vmx.get("guestOS")),
		Annotation: vmx.get("annotation"),
	}
	// uuid.bios / vc.uuid: "56 4d … 5b-9c 0d … 6d" (hostd keeps the VM's identity in the .vmx)
	if u := vmxUUID(vmx.get("uuid.bios")); u != "" {
		spec.Uuid = u
	}
	if u := vmxUUID(vmx.get("vc.uuid")); u != "" {
		spec.InstanceUuid = u
	}
	if n, err := strconv.Atoi(vmx.get("numvcpus")); err == nil && n > 0 {
		spec.NumCPUs = int32(n)
	}
	if n, err := strconv.ParseInt(vmx.get("memSize"), 10, 64); err == nil && n > 0 {
		spec.MemoryMB = n
	}
	seen := map[string]bool{}
	for _, k := range vmx.keys {
		if hasAnyPrefix(k, vmxExtraPrefixes) {
			seen[k] = true
			spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: vmx.vals[k]})
		}
	}
	if m.Config != nil {
		for _, o := range m.Config.ExtraConfig {
			k := o.GetOptionValue().Key
			if hasAnyPrefix(strings.ToLower(k), vmxExtraPrefixes) && !seen[strings.ToLower(k)] {
				spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: ""})
			}
		}
	}
	var devices object.VirtualDeviceList
	if m.Config != nil {
		devices = object.VirtualDeviceList(m.Config.Hardware.Device)
	}
	changes, err := h.vmxDevices(vmx, devices)
	if err != nil {
		return err
	}
	spec.DeviceChange = append(changes, vmxPassthroughChanges(vmx, devices)...)
	vmxMemoryAndMMIO(vmx, &spec, m.Config)
	t, err := vm.Reconfigure(h.ctx, spec)
	if err == nil {
		_, err = t.WaitForResult(h.ctx, nil)
	}
	return err
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

var scsiDiskKey = regexp.MustCompile(`^scsi(\d+):(\d+)\.filename$`)
var ethernetKey = regexp.MustCompile(`^ethernet(\d+)\.present$`)

// vmxDevices lists the device additions that bring devices up to the .vmx: SCSI
// controllers and disks whose files the VM does not use yet, and, for a VM without
// NICs, the .vmx's NICs.
func (h *shimHost) vmxDevices(vmx *vmxFile, devices object.VirtualDeviceList) ([]types.BaseVirtualDeviceConfigSpec, error) {
	var changes []types.BaseVirtualDeviceConfigSpec
	add := func(d types.BaseVirtualDevice) {
		devices = append(devices, d)
		changes = append(changes, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d})
	}
	var dir object.DatastorePath
	dir.FromString(vmx.dsPath)
	finder := find.NewFinder(h.c)
	if dc, err := finder.DefaultDatacenter(h.ctx); err == nil {
		finder.SetDatacenter(dc)
	}
	for _, k := range vmx.keys {
		mm := scsiDiskKey.FindStringSubmatch(k)
		if mm == nil || strings.EqualFold(vmx.vals["scsi"+mm[1]+":"+mm[2]+".present"], "false") {
			continue
		}
		file := vmx.vals[k]
		dsFile, ok := datastorePath(file)
		if !ok {
			dsFile = fmt.Sprintf("[%s] %s", dir.Datastore, path.Join(path.Dir(dir.Path), file))
		}
		if len(devices.SelectByBackingInfo(&types.VirtualDiskFlatVer2BackingInfo{
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: dsFile}})) > 0 {
			continue
		}
		bus, _ := strconv.Atoi(mm[1])
		unit, _ := strconv.Atoi(mm[2])
		ctl := scsiController(devices, int32(bus))
		if ctl == nil {
			kind := vmx.vals["scsi"+mm[1]+".virtualdev"]
			if kind == "" {
				kind = "lsilogic"
			}
			c, err := devices.CreateSCSIController(kind)
			if err != nil {
				return nil, err
			}
			c.(types.BaseVirtualSCSIController).GetVirtualSCSIController().BusNumber = int32(bus)
			add(c)
			ctl = c.(types.BaseVirtualController)
		}
		var p object.DatastorePath
		p.FromString(dsFile)
		ds, err := finder.Datastore(h.ctx, p.Datastore)
		if err != nil {
			return nil, err
		}
		disk := devices.CreateDisk(ctl, ds.Reference(), dsFile)
		disk.UnitNumber = types.NewInt32(int32(unit))
		disk.CapacityInKB = h.diskCapacityKB(dsFile)
		add(disk)
	}
	if len(devices.SelectByType((*types.VirtualEthernetCard)(nil))) > 0 {
		return changes, nil
	}
	for _, k := range vmx.keys {
		mm := ethernetKey.FindStringSubmatch(k)
		if mm == nil || !strings.EqualFold(vmx.vals[k], "true") {
			continue
		}
		pre := "ethernet" + mm[1] + "."
		net, err := finder.Network(h.ctx, vmx.vals[pre+"networkname"])
		if err != nil {
			return nil, err
		}
		backing, err := net.EthernetCardBackingInfo(h.ctx)
		if err != nil {
			return nil, err
		}
		kind := vmx.vals[pre+"virtualdev"]
		if kind == "" {
			kind = "e1000"
		}
		nic, err := devices.CreateEthernetCard(kind, backing)
		if err != nil {
			return nil, err
		}
		if mac := vmx.vals[pre+"address"]; mac != "" {
			card := nic.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
			card.AddressType, card.MacAddress = string(types.VirtualEthernetCardMacTypeManual), mac
		}
		add(nic)
	}
	return changes, nil
}

func scsiController(devices object.VirtualDeviceList, bus int32) types.BaseVirtualController {
	for _, d := range devices {
		if c, ok := d.(types.BaseVirtualSCSIController); ok && c.GetVirtualSCSIController().BusNumber == bus {
			return d.(types.BaseVirtualController)
		}
	}
	return nil
}

var descriptorExtent = regexp.MustCompile(`(?m)^RW (\d+) `)

// diskCapacityKB reads the size from the disk's descriptor ("RW <sectors> VMFS …").
func (h *shimHost) diskCapacityKB(dsFile string) int64 {
	b, err := h.readDatastoreFile(dsFile)
	if err != nil {
		return 0
	}
	var total int64
	for _, m := range descriptorExtent.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		total += n
	}
	return total / 2
}

// vmxGuestOSRule is hostd's .vmx name of an API guest id: "ubuntu64Guest" → "ubuntu-64",
// "debian11_64Guest" → "debian11-64", "otherGuest64" → "other-64", "windows9Guest" →
// "windows9" (lower case, "Guest" dropped, a 64-bit suffix written "-64").
func vmxGuestOSRule(id string) string {
	s, sixtyFour := id, false
	switch {
	case strings.HasSuffix(s, "Guest64"):
		s, sixtyFour = strings.TrimSuffix(s, "Guest64"), true
	case strings.HasSuffix(s, "Guest"):
		s = strings.TrimSuffix(s, "Guest")
		if strings.HasSuffix(s, "_64") {
			s, sixtyFour = strings.TrimSuffix(s, "_64"), true
		} else if strings.HasSuffix(s, "64") {
			s, sixtyFour = strings.TrimSuffix(s, "64"), true
		}
	}
	s = strings.ToLower(s)
	if sixtyFour {
		s += "-64"
	}
	return s
}

// guestIDOfVMX reads a .vmx guestOS as hostd does: the guest id whose .vmx name it is
// (an API id written as is is taken too); an unknown name stays as written, so the
// host's validation refuses it.
func guestIDOfVMX(v string) string {
	for _, id := range simulator.GuestID {
		if string(id) == v {
			return v
		}
	}
	for _, id := range simulator.GuestID {
		if vmxGuestOSRule(string(id)) == strings.ToLower(v) || vmxGuestOS(string(id)) == v {
			return string(id)
		}
	}
	return v
}

// vmxUUID reads a .vmx uuid ("56 4d 2b 1c 8e 3f 4a 5b-9c 0d 1e 2f 3a 4b 5c 6d") as the API
// shows it ("564d2b1c-8e3f-4a5b-9c0d-1e2f3a4b5c6d"); "" for anything else.
func vmxUUID(v string) string {
	h := strings.NewReplacer(" ", "", "-", "").Replace(strings.ToLower(v))
	if len(h) != 32 {
		return ""
	}
	for _, c := range h {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return ""
		}
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ---- PCI passthrough in a .vmx (ceso-pci attach over SSH) ----
//
//   pciPassthru0.present = "TRUE"
//   pciPassthru0.id = "00000:059:00.0"        (ESXi 7+: %05d:%03d:%02d.%d, every field decimal)
//   pciPassthru0.deviceId = "0x1eb8"
//   pciPassthru0.vendorId = "0x10de"
//   pciPassthru0.systemId = "…"               (the host's, as QueryConfigTarget shows it)
//   sched.mem.min = memSize, sched.mem.pin = "TRUE" (memoryReservationLockedToMax)
//   pciPassthru.use64bitMMIO, pciPassthru.64bitMMIOSizeGB (ExtraConfig)
//
// hostd reads them into VirtualPCIPassthrough devices with a static backing; an id
// it cannot read stays as written, so power-on finds no such device (pci.go).

var passthruPresentKey = regexp.MustCompile(`^pcipassthru(\d+)\.present$`)

// vmxPCIAddress turns "00000:059:00.0" into "0000:3b:00.0"; other text stays as is.
func vmxPCIAddress(id string) string {
	var seg, bus, slot, fn int
	if n, err := fmt.Sscanf(id, "%05d:%03d:%02d.%d", &seg, &bus, &slot, &fn); err != nil || n != 4 ||
		len(id) != len("00000:000:00.0") || bus > 255 || slot > 31 || fn > 7 {
		return id
	}
	return fmt.Sprintf("%04x:%02x:%02x.%x", seg, bus, slot, fn)
}

// vmxPassthroughChanges brings the VM's passthrough devices to the .vmx's: devices
// whose entry is gone are removed, new entries added (an entry is kept when a device
// with the same address and ids is there).
func vmxPassthroughChanges(vmx *vmxFile, devices object.VirtualDeviceList) []types.BaseVirtualDeviceConfigSpec {
	type entry struct {
		id, deviceID, systemID string
		vendor                 int16
	}
	var want []entry
	for _, k := range vmx.keys {
		mm := passthruPresentKey.FindStringSubmatch(k)
		if mm == nil || !strings.EqualFold(vmx.vals[k], "true") {
			continue
		}
		pre := "pcipassthru" + mm[1] + "."
		dev, _ := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(vmx.vals[pre+"deviceid"]), "0x"), 16, 16)
		ven, _ := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(vmx.vals[pre+"vendorid"]), "0x"), 16, 16)
		want = append(want, entry{id: vmxPCIAddress(vmx.vals[pre+"id"]), deviceID: fmt.Sprintf("%04x", dev),
			systemID: vmx.vals[pre+"systemid"], vendor: int16(uint16(ven))})
	}
	var changes []types.BaseVirtualDeviceConfigSpec
	for _, d := range devices {
		pt, ok := d.(*types.VirtualPCIPassthrough)
		if !ok {
			continue
		}
		b, static := pt.Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo)
		kept := false
		for i, w := range want {
			if static && w.id == b.Id && w.deviceID == b.DeviceId && w.vendor == b.VendorId && w.systemID == b.SystemId {
				want, kept = append(want[:i], want[i+1:]...), true
				break
			}
		}
		if !kept {
			changes = append(changes, &types.VirtualDeviceConfigSpec{
				Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: d})
		}
	}
	for i, w := range want {
		changes = append(changes, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd,
			Device: &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{
				Key: int32(-300 - i),
				Backing: &types.VirtualPCIPassthroughDeviceBackingInfo{
					Id: w.id, DeviceId: w.deviceID, SystemId: w.systemID, VendorId: w.vendor},
			}}})
	}
	return changes
}

// vmxMemoryAndMMIO carries sched.mem.min/pin and the 64-bit MMIO keys into the spec.
func vmxMemoryAndMMIO(vmx *vmxFile, spec *types.VirtualMachineConfigSpec, cfg *types.VirtualMachineConfigInfo) {
	pin := strings.EqualFold(vmx.get("sched.mem.pin"), "true")
	spec.MemoryReservationLockedToMax = &pin
	if n, err := strconv.ParseInt(vmx.get("sched.mem.min"), 10, 64); err == nil && n >= 0 {
		spec.MemoryAllocation = &types.ResourceAllocationInfo{Reservation: &n}
	}
	for _, k := range []string{"pciPassthru.use64bitMMIO", "pciPassthru.64bitMMIOSizeGB"} {
		v, in := vmx.vals[strings.ToLower(k)]
		had := false
		if cfg != nil {
			for _, o := range cfg.ExtraConfig {
				had = had || strings.EqualFold(o.GetOptionValue().Key, k)
			}
		}
		if in || had {
			spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: v})
		}
	}
}
