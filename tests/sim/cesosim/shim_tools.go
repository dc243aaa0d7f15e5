package main

// vmkfstools and esxcli, the other local clients a free host's users script (shim.go).
// Unlike vim-cmd they fail with a message on stderr and a non-zero exit status.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

var vmkfstoolsFormats = map[string]string{
	"thin":             "VMFS thin-provisioned",
	"zeroedthick":      "VMFS zeroedthick",
	"eagerzeroedthick": "VMFS eagerzeroedthick",
}

// vmkfstools supports -i SRC [-d FMT] DST (clone), -c SIZE [-d FMT] DST (create) and
// -U DST (delete); paths are /vmfs/volumes/DS/… as on the host.
func vmkfstools(h *shimHost, args []string) int {
	var op, opArg, format string
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-i", "--clonevirtualdisk", "-c", "--createvirtualdisk":
			if i+1 >= len(args) {
				return h.toolError("Option %s requires an argument", a)
			}
			op, opArg = a[:2], args[i+1]
			if strings.HasPrefix(a, "--c") {
				op = map[string]string{"--clonevirtualdisk": "-i", "--createvirtualdisk": "-c"}[a]
			}
			i++
		case "-d", "--diskformat":
			if i+1 >= len(args) {
				return h.toolError("Option %s requires an argument", a)
			}
			format = args[i+1]
			i++
		case "-U", "--deletevirtualdisk":
			op = "-U"
		default:
			if strings.HasPrefix(a, "-") {
				return h.toolError("Unknown option %s", a)
			}
			rest = append(rest, a)
		}
	}
	if op == "" || len(rest) != 1 {
		return h.toolError("Usage: vmkfstools -i SRC -d thin DST | -c SIZE -d thin DST | -U DST")
	}
	if format == "" {
		format = "zeroedthick"
	}
	if _, ok := vmkfstoolsFormats[format]; !ok {
		return h.toolError("Invalid disk format %q", format)
	}
	if f := h.takeShimFault(op); f != nil {
		return h.toolError("%s", shimFaultText(f))
	}
	dst, ok := datastorePath(rest[0])
	if !ok {
		return h.toolError("Failed to open '%s': not a file on a datastore (/vmfs/volumes/…)", rest[0])
	}
	dc, err := find.NewFinder(h.c).DefaultDatacenter(h.ctx)
	if err != nil {
		return h.toolError("%v", err)
	}
	m := object.NewVirtualDiskManager(h.c)
	switch op {
	case "-i":
		src, ok := datastorePath(opArg)
		if !ok {
			return h.toolError("Failed to open '%s': not a file on a datastore (/vmfs/volumes/…)", opArg)
		}
		fmt.Fprintf(h.out, "Destination disk format: %s\nCloning disk '%s'...\n", vmkfstoolsFormats[format], opArg)
		spec := &types.VirtualDiskSpec{DiskType: format, AdapterType: string(types.VirtualDiskAdapterTypeLsiLogic)}
		t, err := m.CopyVirtualDisk(h.ctx, src, dc, dst, dc, spec, false)
		if err = shimWait(h, t, err); err != nil {
			return h.toolError("Failed to clone disk: %s", errMsg(err))
		}
		fmt.Fprintln(h.out, "Clone: 100% done.")
	case "-c":
		kb, err := parseSizeKB(opArg)
		if err != nil {
			return h.toolError("%v", err)
		}
		spec := &types.FileBackedVirtualDiskSpec{CapacityKb: kb, VirtualDiskSpec: types.VirtualDiskSpec{
			DiskType: format, AdapterType: string(types.VirtualDiskAdapterTypeLsiLogic)}}
		fmt.Fprintf(h.out, "Create: ")
		t, err := m.CreateVirtualDisk(h.ctx, dst, dc, spec)
		if err = shimWait(h, t, err); err != nil {
			fmt.Fprintln(h.out)
			return h.toolError("Failed to create virtual disk: %s", errMsg(err))
		}
		fmt.Fprintln(h.out, "100% done.")
	case "-U":
		t, err := m.DeleteVirtualDisk(h.ctx, dst, dc)
		if err = shimWait(h, t, err); err != nil {
			return h.toolError("Failed to delete virtual disk: %s", errMsg(err))
		}
	}
	return 0
}

func shimWait(h *shimHost, t *object.Task, err error) error {
	if err == nil {
		_, err = t.WaitForResult(h.ctx, nil)
	}
	return err
}

func errMsg(err error) string {
	name, msg := faultOf(err)
	return fmt.Sprintf("%s (%s)", msg, name)
}

func shimFaultText(f *shimFault) string {
	if f.msg != "" {
		return f.msg
	}
	return "Injected fault " + f.name
}

var sizeArg = regexp.MustCompile(`^(\d+)([kKmMgGtT]?)$`)

func parseSizeKB(s string) (int64, error) {
	m := sizeArg.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("Invalid size %q", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	switch strings.ToLower(m[2]) {
	case "":
		return n / 1024, nil
	case "k":
		return n, nil
	case "m":
		return n << 10, nil
	case "g":
		return n << 20, nil
	}
	return n << 30, nil
}

func (h *shimHost) toolError(format string, a ...interface{}) int {
	fmt.Fprintf(h.errOut, format+"\n", a...)
	return 1
}

// esxcli supports `system version get` and `hardware pci list`, and the
// passthrough and portgroup commands of shim_esxcli.go. The namespace words come
// first; options (-x VALUE, --long=VALUE, --long VALUE) follow.
func esxcli(h *shimHost, args []string) int {
	var words []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		words, args = append(words, args[0]), args[1:]
	}
	cmd := strings.Join(words, " ")
	if len(words) > 0 {
		// A rule names the whole command (network.vswitch.standard.portgroup.set) or its
		// first word (network).
		f := h.takeShimFault(strings.Join(words, "."))
		if f == nil {
			f = h.takeShimFault(words[0])
		}
		if f != nil {
			return h.toolError("Error: %s", shimFaultText(f))
		}
	}
	switch cmd {
	case "system version get":
		a := h.c.ServiceContent.About
		fmt.Fprintf(h.out, "   Product: %s\n   Version: %s\n   Build: Releasebuild-%s\n   Update: 0\n   Patch: 0\n",
			a.Name, a.Version, a.Build)
		return 0
	case "hardware pci list":
		return h.pciList()
	}
	if run, ok := esxcliCommands[cmd]; ok {
		return run(h, args)
	}
	return h.toolError("Error: Unknown command or namespace %s", cmd)
}

// pciList prints one block per host PCI device, from HostSystem.hardware.pciDevice.
func (h *shimHost) pciList() int {
	var hosts []mo.HostSystem
	inv := &inventory{client: h.c}
	if err := inv.retrieveAll(h.ctx, "HostSystem", []string{"hardware.pciDevice", "config.pciPassthruInfo"}, &hosts); err != nil || len(hosts) == 0 {
		return h.toolError("Error: cannot read the host's PCI devices")
	}
	host := hosts[0]
	capable, enabled, active := map[string]bool{}, map[string]bool{}, map[string]bool{}
	if host.Config != nil {
		for _, p := range host.Config.PciPassthruInfo {
			i := p.GetHostPciPassthruInfo()
			capable[i.Id], enabled[i.Id], active[i.Id] = i.PassthruCapable, i.PassthruEnabled, i.PassthruActive
		}
	}
	ownerOf := func(passthru bool) string {
		if passthru {
			return "VM Passthru"
		}
		return "VMkernel"
	}
	if host.Hardware == nil {
		return 0
	}
	for _, d := range host.Hardware.PciDevice {
		addr := d.Id
		if strings.Count(addr, ":") == 1 {
			addr = "0000:" + addr
		}
		fmt.Fprintf(h.out, "%s\n   Address: %s\n   Segment: 0x0000\n   Bus: 0x%02x\n   Slot: 0x%02x\n   Function: 0x%x\n",
			addr, addr, uint8(d.Bus), uint8(d.Slot), uint8(d.Function))
		fmt.Fprintf(h.out, "   VMkernel Name: \n   Vendor Name: %s\n   Device Name: %s\n", d.VendorName, d.DeviceName)
		fmt.Fprintf(h.out, "   Configured Owner: %s\n   Current Owner: %s\n", ownerOf(enabled[d.Id]), ownerOf(active[d.Id]))
		fmt.Fprintf(h.out, "   Vendor ID: 0x%04x\n   Device ID: 0x%04x\n   SubVendor ID: 0x%04x\n   SubDevice ID: 0x%04x\n",
			uint16(d.VendorId), uint16(d.DeviceId), uint16(d.SubVendorId), uint16(d.SubDeviceId))
		fmt.Fprintf(h.out, "   Device Class: 0x%04x\n   Passthru Capable: %t\n\n", uint16(d.ClassId), capable[d.Id])
	}
	return 0
}
