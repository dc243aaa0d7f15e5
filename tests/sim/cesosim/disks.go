package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io/ioutil"
	"os"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Disk files, the way a real ESXi host lays them out on VMFS:
//
//	NAME.vmdk       a small text descriptor whose extent line names the data file
//	NAME-flat.vmdk  the data; its size is the disk's capacity (even when thin)
//
// vcsim creates both names but leaves them empty and reports 1 MiB capacity. We write a
// descriptor and size the flat file to the capacity, and with -fill-mib put pseudo-random
// data in it, so that downloads, copies and backups can be compared byte for byte and
// tools learn to read the descriptor rather than assume a file name.

// flatName is vcsim's (and ESXi's) rule for the data file of a descriptor.
func flatName(descriptor string) string {
	return strings.Replace(descriptor, ".vmdk", "-flat.vmdk", 1)
}

// diskSeed derives each disk's PRNG seed from its datastore path, so every disk differs
// and a given path gets the same content on every run.
func diskSeed(dsPath string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(dsPath))
	return h.Sum64()
}

// splitmix64 is a tiny, fast generator with a 2^64 period: no repeating blocks, so a
// copy that drops or duplicates a chunk cannot compare equal by accident.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9E3779B97F4A7C15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func fillPseudoRandom(f *os.File, n int64, seed uint64) error {
	rng := splitmix64(seed)
	buf := make([]byte, 1<<20)
	for n > 0 {
		chunk := buf
		if int64(len(chunk)) > n {
			chunk = chunk[:(n+7)&^7] // whole words; the excess is not written
		}
		for i := 0; i < len(chunk); i += 8 {
			binary.LittleEndian.PutUint64(chunk[i:], rng.next())
		}
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		if _, err := f.Write(chunk); err != nil {
			return err
		}
		n -= int64(len(chunk))
	}
	return nil
}

// newDescriptor renders a monolithic-flat VMFS descriptor like the ones ESXi writes.
func newDescriptor(flatBase string, capacity int64, seed uint64, thin bool) string {
	sectors := capacity / 512
	cylinders := sectors / (255 * 63)
	if cylinders < 1 {
		cylinders = 1
	}
	rng := splitmix64(seed ^ 0x5eed)
	cid := uint32(rng.next())
	var uuid []string
	for i := 0; i < 16; i++ {
		uuid = append(uuid, fmt.Sprintf("%02x", byte(rng.next())))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=%08x\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\n", cid)
	fmt.Fprintf(&b, "# Extent description\nRW %d VMFS \"%s\"\n\n", sectors, flatBase)
	fmt.Fprintf(&b, "# The Disk Data Base\n#DDB\n\n")
	fmt.Fprintf(&b, "ddb.adapterType = \"lsilogic\"\n")
	fmt.Fprintf(&b, "ddb.geometry.cylinders = \"%d\"\nddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\n", cylinders)
	fmt.Fprintf(&b, "ddb.longContentID = \"%016x%016x\"\n", rng.next(), rng.next())
	if thin {
		fmt.Fprintf(&b, "ddb.thinProvisioned = \"1\"\n")
	}
	fmt.Fprintf(&b, "ddb.uuid = \"%s\"\nddb.virtualHWVersion = \"13\"\n", strings.Join(uuid, " "))
	return b.String()
}

// extentLine matches e.g.: RW 4194304 VMFS "web01-flat.vmdk"
var extentLine = regexp.MustCompile(`(?m)^(RW|RDONLY|NOACCESS) (\d+) (\w+) "(.*)"(.*)$`)

func isDescriptor(b []byte) bool {
	return strings.HasPrefix(string(b), "# Disk DescriptorFile")
}

// rewriteExtent sets the first extent's size (if sectors > 0) and file name (if not "").
func rewriteExtent(desc string, sectors int64, file string) string {
	done := false
	return extentLine.ReplaceAllStringFunc(desc, func(line string) string {
		if done {
			return line
		}
		done = true
		m := extentLine.FindStringSubmatch(line)
		if sectors > 0 {
			m[2] = strconv.FormatInt(sectors, 10)
		}
		if file != "" {
			m[4] = file
		}
		return fmt.Sprintf("%s %s %s \"%s\"%s", m[1], m[2], m[3], m[4], m[5])
	})
}

// diskJob is one disk whose files need writing.
type diskJob struct {
	descriptor, flat string // local paths
	capacity, fill   int64
	seed             uint64
	thin             bool
}

// run makes the flat file at least capacity bytes (sparse), optionally fills its start,
// and writes or updates the descriptor. It never shrinks or overwrites existing data
// except for the fill, which only happens at startup.
func (j diskJob) run() error {
	f, err := os.OpenFile(j.flat, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if j.fill > 0 {
		n := j.fill
		if n > j.capacity {
			n = j.capacity
		}
		if err := fillPseudoRandom(f, n, j.seed); err != nil {
			return err
		}
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < j.capacity {
		if err := f.Truncate(j.capacity); err != nil {
			return err
		}
	}
	cur, err := ioutil.ReadFile(j.descriptor)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var next string
	switch {
	case len(cur) == 0:
		next = newDescriptor(path.Base(j.flat), j.capacity, j.seed, j.thin)
	case isDescriptor(cur):
		next = rewriteExtent(string(cur), j.capacity/512, "")
	default:
		return nil // someone uploaded their own content; leave it alone
	}
	if next == string(cur) {
		return nil
	}
	return ioutil.WriteFile(j.descriptor, []byte(next), 0o600)
}

// planVMDisks returns the file jobs for a VM's flat-file disks, growing (through
// ReconfigVM_Task) any disk whose capacity is below fill so the API never reports less
// than the file holds.
func (inv *inventory) planVMDisks(ctx context.Context, vm mo.VirtualMachine, fill int64, dirs map[string]string) ([]diskJob, error) {
	if vm.Config == nil {
		return nil, nil
	}
	var jobs []diskJob
	var grow []types.BaseVirtualDeviceConfigSpec
	for _, d := range object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		capacity := disk.CapacityInBytes
		if capacity == 0 {
			capacity = disk.CapacityInKB * 1024
		}
		if capacity < fill {
			capacity = fill
			disk.CapacityInKB = capacity / 1024
			disk.CapacityInBytes = capacity
			// No FileOperation: vcsim's "replace" would truncate the descriptor.
			grow = append(grow, &types.VirtualDeviceConfigSpec{
				Operation: types.VirtualDeviceConfigSpecOperationEdit,
				Device:    disk,
			})
		}
		desc, err := localPath(dirs, b.FileName)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, diskJob{
			descriptor: desc,
			flat:       flatName(desc),
			capacity:   capacity,
			fill:       fill,
			seed:       diskSeed(b.FileName),
			thin:       b.ThinProvisioned != nil && *b.ThinProvisioned,
		})
	}
	if len(grow) > 0 {
		task, err := object.NewVirtualMachine(inv.client, vm.Self).Reconfigure(ctx,
			types.VirtualMachineConfigSpec{DeviceChange: grow})
		if err != nil {
			return nil, err
		}
		if err := task.Wait(ctx); err != nil {
			return nil, fmt.Errorf("growing disks of %q: %v", vm.Name, err)
		}
	}
	return jobs, nil
}

// materializeAllDisks runs at startup, before the URL is published.
func (inv *inventory) materializeAllDisks(ctx context.Context, fillMiB int) error {
	dirs, err := inv.datastoreDirs(ctx)
	if err != nil {
		return err
	}
	vms, err := inv.vms(ctx, []string{"name", "config"})
	if err != nil {
		return err
	}
	var jobs []func() error
	for _, vm := range vms {
		disks, err := inv.planVMDisks(ctx, vm, int64(fillMiB)<<20, dirs)
		if err != nil {
			return err
		}
		for _, d := range disks {
			d := d
			jobs = append(jobs, func() error {
				if err := d.run(); err != nil {
					return fmt.Errorf("writing %s: %v", d.flat, err)
				}
				return nil
			})
		}
		vm := vm
		jobs = append(jobs, func() error { return writeVMX(vm, dirs) })
	}
	if err := runParallel(jobs); err != nil {
		return err
	}
	// vcsim computes layoutEx file sizes and summary.storage from the files on disk.
	jobs = jobs[:0]
	for _, vm := range vms {
		ref := vm.Self
		jobs = append(jobs, func() error {
			if err := object.NewVirtualMachine(inv.client, ref).RefreshStorageInfo(ctx); err != nil {
				return err
			}
			fixLayoutEx(ref)
			return nil
		})
	}
	return runParallel(jobs)
}

// runParallel runs jobs on a few workers: with thousands of VMs, startup is bound by the
// file system, and vcsim locks per object, so different VMs do not contend.
func runParallel(jobs []func() error) error {
	workers := runtime.NumCPU()
	if workers > 8 {
		workers = 8
	}
	ch := make(chan func() error)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for job := range ch {
				if err := job(); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for _, job := range jobs {
		ch <- job
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// syncVM brings a VM's disk files in line with its devices after the API changed them
// (CreateVM_Task with new disks, ReconfigVM_Task adding or growing a disk, vpx clones).
func (inv *inventory) syncVM(ctx context.Context, ref types.ManagedObjectReference) error {
	dirs, err := inv.datastoreDirs(ctx)
	if err != nil {
		return err
	}
	var vm mo.VirtualMachine
	if err := property.DefaultCollector(inv.client).RetrieveOne(ctx, ref, []string{"name", "config"}, &vm); err != nil {
		return err
	}
	jobs, err := inv.planVMDisks(ctx, vm, 0, dirs)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if err := j.run(); err != nil {
			return err
		}
	}
	if err := writeVMX(vm, dirs); err != nil {
		return err
	}
	if err := object.NewVirtualMachine(inv.client, ref).RefreshStorageInfo(ctx); err != nil {
		return err
	}
	fixLayoutEx(ref)
	return nil
}

// syncNewDisk handles VirtualDiskManager.CreateVirtualDisk_Task.
func (inv *inventory) syncNewDisk(ctx context.Context, dsPath string, capacity int64, thin bool) error {
	dirs, err := inv.datastoreDirs(ctx)
	if err != nil {
		return err
	}
	desc, err := localPath(dirs, dsPath)
	if err != nil {
		return err
	}
	return diskJob{descriptor: desc, flat: flatName(desc), capacity: capacity, seed: diskSeed(dsPath), thin: thin}.run()
}

// fixCopiedDescriptor: vcsim copies/moves a descriptor verbatim, so its extent line still
// names the source's flat file; a real host writes one naming the destination's.
func (inv *inventory) fixCopiedDescriptor(ctx context.Context, dsPath string) error {
	dirs, err := inv.datastoreDirs(ctx)
	if err != nil {
		return err
	}
	desc, err := localPath(dirs, dsPath)
	if err != nil {
		return err
	}
	cur, err := ioutil.ReadFile(desc)
	if err != nil || !isDescriptor(cur) {
		return err
	}
	next := rewriteExtent(string(cur), 0, path.Base(flatName(desc)))
	if next == string(cur) {
		return nil
	}
	return ioutil.WriteFile(desc, []byte(next), 0o600)
}
