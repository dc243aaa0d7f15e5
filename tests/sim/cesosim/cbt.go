package main

// Changed Block Tracking, as a standalone ESXi host does it (vcsim 0.24.2 keeps
// config.changeTrackingEnabled from ReconfigVM_Task and nothing else).
//
//   - Tracking starts when a VM's changeTrackingEnabled becomes true (ReconfigVM_Task)
//     or when a VM that has it is first seen; each disk gets a change id
//     "<uuid>/<seq>", the uuid in ESXi's spelling ("52 4f 1a … 3c-5d 6e … 9f").
//   - Writes: the tests (and bench) change disks by writing into the -flat.vmdk behind
//     the host's back, and datastore PUTs replace files, so the host cannot see
//     individual writes. Instead every snapshot creation (a stun, where ESXi also
//     closes a change epoch) hashes the disk in 64 KiB blocks and records the blocks
//     whose content differs from the previous epoch: the epoch's changed extents.
//     This reports at most what a real tracker reports (a write of identical bytes is
//     not seen, which changes nothing a backup reads). The seq part grows by one per
//     epoch; the snapshot's config carries the disk backing's changeId of its epoch.
//   - QueryChangedDiskAreas(vm, snapshot, deviceKey, startOffset, changeId): "*" gives
//     the blocks holding data (non-zero) at the snapshot; "uuid/seq" the union of the
//     epochs after seq up to the snapshot's. At most cbtMaxAreas areas per answer:
//     DiskChangeInfo{startOffset, length} says how far the answer covers, and the
//     client asks again from startOffset+length until it reaches the capacity.
//   - Strict, as a host: a VM without tracking (or without a tracked epoch), a
//     snapshot that is not the VM's, a change id of another uuid (tracking reset)
//     → FileFault naming the disk; a malformed change id, a seq after the snapshot's,
//     an unknown deviceKey, a startOffset outside the disk → InvalidArgument.
//   - Reset: a clone, a copy, a restored or re-registered VM is another VM (its own
//     state, a new uuid); turning tracking off drops the state, on again starts anew.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"hash/maphash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	cbtBlock    = 64 << 10 // granularity of the simulated tracker
	cbtMaxAreas = 64       // areas per QueryChangedDiskAreas answer (paging)
)

type ctkDisk struct {
	uuid   string
	seq    int
	hashes []uint64       // per block, at the last epoch (nil before the first)
	epochs map[int][]bool // seq → blocks changed in the epoch that ended with it
}

type ctkSnap struct {
	vm    string
	disks map[int32]ctkSnapDisk
}

type ctkSnapDisk struct {
	uuid      string
	seq       int
	capacity  int64
	allocated []bool // blocks holding data at the snapshot
	file      string
}

var zeroBlock [cbtBlock]byte

var cbt = struct {
	sync.Mutex
	vms   map[string]map[int32]*ctkDisk // VM moref → device key → state
	snaps map[string]*ctkSnap           // snapshot moref → what it captured
	seed  maphash.Seed
}{vms: map[string]map[int32]*ctkDisk{}, snaps: map[string]*ctkSnap{}, seed: maphash.MakeSeed()}

// newCtkUUID is a uuid as ESXi prints change ids: 8 hex pairs, "-", 8 hex pairs.
func newCtkUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	var parts []string
	for _, x := range b[:8] {
		parts = append(parts, fmt.Sprintf("%02x", x))
	}
	s := strings.Join(parts, " ") + "-"
	parts = parts[:0]
	for _, x := range b[8:] {
		parts = append(parts, fmt.Sprintf("%02x", x))
	}
	return s + strings.Join(parts, " ")
}

// vmTracking reports config.changeTrackingEnabled and the VM's virtual disks.
func vmTracking(ref types.ManagedObjectReference) (enabled bool, disks []*types.VirtualDisk, ok bool) {
	vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return false, nil, false
	}
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil {
			return
		}
		enabled = vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
		for _, d := range object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
			disks = append(disks, d.(*types.VirtualDisk))
		}
	})
	return enabled, disks, true
}

// cbtReconfigured follows a successful ReconfigVM_Task: tracking turned off drops the
// state (the next "on" starts with a new uuid).
func cbtReconfigured(ref types.ManagedObjectReference) {
	enabled, _, ok := vmTracking(ref)
	if !ok {
		return
	}
	cbt.Lock()
	defer cbt.Unlock()
	if !enabled {
		delete(cbt.vms, ref.Value)
	} else if cbt.vms[ref.Value] == nil {
		cbt.vms[ref.Value] = map[int32]*ctkDisk{}
	}
}

// hashBlocks hashes a flat file in cbtBlock blocks up to capacity (a short file reads
// as zeros beyond its end) and says which blocks hold data.
func hashBlocks(path string, capacity int64) ([]uint64, []bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	n := (capacity + cbtBlock - 1) / cbtBlock
	hashes := make([]uint64, n)
	data := make([]bool, n)
	buf := make([]byte, cbtBlock)
	var h maphash.Hash
	h.SetSeed(cbt.seed)
	for i := int64(0); i < n; i++ {
		k, err := io.ReadFull(f, buf)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return nil, nil, err
		}
		for j := k; j < len(buf); j++ {
			buf[j] = 0
		}
		h.Reset()
		_, _ = h.Write(buf)
		hashes[i] = h.Sum64()
		data[i] = !bytes.Equal(buf, zeroBlock[:])
	}
	return hashes, data, nil
}

// cbtSnapshot runs after a successful CreateSnapshot_Task: it closes an epoch of every
// disk of a tracked VM and puts the change ids into the snapshot's config (a copy of
// the devices: vcsim shares them with the VM) and the VM's.
func (f *front) cbtSnapshot(ctx context.Context, vmRef, snapRef types.ManagedObjectReference) error {
	enabled, disks, ok := vmTracking(vmRef)
	if !ok || !enabled {
		return nil
	}
	dirs, err := f.inv.datastoreDirs(ctx)
	if err != nil {
		return err
	}
	snap := &ctkSnap{vm: vmRef.Value, disks: map[int32]ctkSnapDisk{}}
	ids := map[int32]string{}
	cbt.Lock()
	state := cbt.vms[vmRef.Value]
	if state == nil {
		state = map[int32]*ctkDisk{}
		cbt.vms[vmRef.Value] = state
	}
	for _, d := range disks {
		b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		path, err := localPath(dirs, flatName(b.FileName))
		if err != nil {
			cbt.Unlock()
			return err
		}
		capacity := d.CapacityInBytes
		if capacity == 0 {
			capacity = d.CapacityInKB * 1024
		}
		hashes, data, err := hashBlocks(path, capacity)
		if err != nil {
			cbt.Unlock()
			return err
		}
		key := d.Key
		cd := state[key]
		if cd == nil {
			cd = &ctkDisk{uuid: newCtkUUID(), epochs: map[int][]bool{}}
			state[key] = cd
		}
		changed := make([]bool, len(hashes))
		for i := range hashes {
			changed[i] = cd.hashes == nil || i >= len(cd.hashes) || cd.hashes[i] != hashes[i]
		}
		cd.seq++
		cd.epochs[cd.seq] = changed
		cd.hashes = hashes
		snap.disks[key] = ctkSnapDisk{uuid: cd.uuid, seq: cd.seq, capacity: capacity, allocated: data, file: b.FileName}
		ids[key] = cd.uuid + "/" + strconv.Itoa(cd.seq)
	}
	cbt.snaps[snapRef.Value] = snap
	cbt.Unlock()

	setIds := func(devices []types.BaseVirtualDevice) []types.BaseVirtualDevice {
		out := make([]types.BaseVirtualDevice, len(devices))
		for i, dev := range devices {
			out[i] = dev
			d, ok := dev.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			id, has := ids[d.Key]
			if !ok || !has {
				continue
			}
			nd, nb := *d, *b
			nb.ChangeId = id
			nd.Backing = &nb
			out[i] = &nd
		}
		return out
	}
	if s, ok := simulator.Map.Get(snapRef).(*simulator.VirtualMachineSnapshot); ok {
		simulator.Map.WithLock(s, func() { s.Config.Hardware.Device = setIds(s.Config.Hardware.Device) })
	}
	if vm, ok := simulator.Map.Get(vmRef).(*simulator.VirtualMachine); ok {
		simulator.Map.WithLock(vm, func() {
			if vm.Config != nil {
				vm.Config.Hardware.Device = setIds(vm.Config.Hardware.Device)
			}
		})
	}
	return nil
}

func cbtFileFault(w http.ResponseWriter, file string) {
	writeFault(w, "Error caused by file "+file, &types.FileFault{File: file})
}

func cbtInvalid(w http.ResponseWriter, prop string) {
	writeFault(w, "A specified parameter was not correct: "+prop, &types.InvalidArgument{InvalidProperty: prop})
}

// queryChangedDiskAreas answers the call (vcsim has none).
func (f *front) queryChangedDiskAreas(w http.ResponseWriter, body []byte) {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), body)
	if err != nil {
		cbtInvalid(w, "_this")
		return
	}
	req, ok := m.Body.(*types.QueryChangedDiskAreas)
	if !ok {
		cbtInvalid(w, "_this")
		return
	}
	if _, ok := simulator.Map.Get(req.This).(*simulator.VirtualMachine); !ok || req.This.Type != "VirtualMachine" {
		writeFault(w, "The object has already been deleted or has not been completely created",
			&types.ManagedObjectNotFound{Obj: req.This})
		return
	}
	if req.Snapshot == nil {
		// A host answers without a snapshot only for a powered-off VM's current disk
		// state; ceso always queries against its backup snapshot.
		cbtInvalid(w, "snapshot")
		return
	}
	if _, ok := simulator.Map.Get(*req.Snapshot).(*simulator.VirtualMachineSnapshot); !ok {
		writeFault(w, "The object has already been deleted or has not been completely created",
			&types.ManagedObjectNotFound{Obj: *req.Snapshot})
		return
	}
	enabled, disks, _ := vmTracking(req.This)
	var file string
	for _, d := range disks {
		if d.Key == req.DeviceKey {
			if b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				file = b.FileName
			}
		}
	}
	if file == "" {
		cbtInvalid(w, "deviceKey")
		return
	}
	cbt.Lock()
	defer cbt.Unlock()
	snap := cbt.snaps[req.Snapshot.Value]
	if snap == nil || snap.vm != req.This.Value {
		// Another VM's snapshot, or one taken while tracking was off.
		cbtFileFault(w, file)
		return
	}
	sd, ok := snap.disks[req.DeviceKey]
	cd := cbt.vms[req.This.Value][req.DeviceKey]
	if !enabled || !ok || cd == nil || cd.uuid != sd.uuid {
		cbtFileFault(w, file) // not tracked (any more)
		return
	}
	if req.StartOffset < 0 || req.StartOffset >= sd.capacity || req.StartOffset%512 != 0 {
		cbtInvalid(w, "startOffset")
		return
	}
	var blocks []bool
	if req.ChangeId == "*" {
		blocks = sd.allocated
	} else {
		slash := strings.LastIndexByte(req.ChangeId, '/')
		if slash <= 0 {
			cbtInvalid(w, "changeId")
			return
		}
		seq, err := strconv.Atoi(req.ChangeId[slash+1:])
		if err != nil || seq < 0 || seq > sd.seq {
			cbtInvalid(w, "changeId")
			return
		}
		if req.ChangeId[:slash] != sd.uuid {
			cbtFileFault(w, file) // tracking was reset since that id
			return
		}
		blocks = make([]bool, len(sd.allocated))
		for s := seq + 1; s <= sd.seq; s++ {
			for i, c := range cd.epochs[s] {
				if c && i < len(blocks) {
					blocks[i] = true
				}
			}
		}
	}
	info := types.DiskChangeInfo{StartOffset: req.StartOffset}
	first := req.StartOffset / cbtBlock
	end := int64(len(blocks))
	i := first
	for i < end {
		if !blocks[i] {
			i++
			continue
		}
		if len(info.ChangedArea) == cbtMaxAreas {
			break
		}
		j := i
		for j < end && blocks[j] {
			j++
		}
		start := i * cbtBlock
		if start < req.StartOffset {
			start = req.StartOffset
		}
		stop := j * cbtBlock
		if stop > sd.capacity {
			stop = sd.capacity
		}
		info.ChangedArea = append(info.ChangedArea, types.DiskChangeExtent{Start: start, Length: stop - start})
		i = j
	}
	covered := i * cbtBlock
	if i >= end || covered > sd.capacity {
		covered = sd.capacity
	}
	info.Length = covered - req.StartOffset
	writeResponse(w, &types.QueryChangedDiskAreasResponse{Returnval: info})
}

// serveChangeInfo answers QueryChangedDiskAreas with a rule's DiskChangeInfo as it is
// (hostile answers: areas beyond the disk, overlapping, negative).
func serveChangeInfo(w http.ResponseWriter, inj *injection) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><QueryChangedDiskAreasResponse xmlns="urn:vim25"><returnval>`)
	fmt.Fprintf(&b, "<startOffset>%d</startOffset><length>%d</length>", inj.ChangeStart, inj.ChangeLength)
	for _, a := range strings.Split(inj.ChangeAreas, ",") {
		if sl := strings.SplitN(a, ":", 2); len(sl) == 2 {
			fmt.Fprintf(&b, "<changedArea><start>%s</start><length>%s</length></changedArea>", sl[0], sl[1])
		}
	}
	b.WriteString(`</returnval></QueryChangedDiskAreasResponse></soapenv:Body></soapenv:Envelope>`)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, b.String())
}
