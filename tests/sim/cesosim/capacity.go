package main

// Host and datastore capacity flags, so that several simulators started side by side are
// hosts of different sizes (placement, ceso-place). vcsim gives every host the same
// hardware (4 GiB, 2 cores of 2294 MHz, fixed quick stats) and every datastore the
// capacity and free space of the file system its directory is on (statfs), which is the
// same for all simulators of a test and changes as other tests write files.
//
// Every host also gets a hardware uuid of its own (summary.hardware.uuid and
// hardware.systemInfo.uuid), random at start unless -host-uuid names one: vcsim gives
// the standalone host of every simulator the same one, so two simulators would pass
// for one host (ceso checks that SSH access reaches the API's host by this uuid, which
// vim-cmd hostsvc/hostsummary prints; shim_vimcmd.go).
//
// The flags set the numbers the API reports and nothing else: no check that they are
// consistent (a test plays a host that answers nonsense with them, e.g. more memory in
// use than it has). Creating a disk still lowers the datastore's free space, as vcsim
// does (by the disk's capacity).

import (
	"crypto/rand"
	"flag"
	"fmt"

	"github.com/vmware/govmomi/simulator"
)

var capacityFlags struct {
	memoryMiB, memoryUsedMiB     int64
	cpuCores, cpuMHz, cpuUsedMHz int64
	dsCapacityGiB, dsFreeGiB     int64
	hostUUID                     string
}

func init() {
	c := &capacityFlags
	flag.Int64Var(&c.memoryMiB, "host-memory-mib", -1, "every host's memory size in MiB (summary.hardware.memorySize); -1: vcsim's 4 GiB")
	flag.Int64Var(&c.memoryUsedMiB, "host-memory-used-mib", -1, "every host's summary.quickStats.overallMemoryUsage in MiB; -1: vcsim's")
	flag.Int64Var(&c.cpuCores, "host-cpu-cores", -1, "every host's numCpuCores; -1: vcsim's 2")
	flag.Int64Var(&c.cpuMHz, "host-cpu-mhz", -1, "every host's cpuMhz (per core); -1: vcsim's 2294")
	flag.Int64Var(&c.cpuUsedMHz, "host-cpu-used-mhz", -1, "every host's summary.quickStats.overallCpuUsage in MHz; -1: vcsim's")
	flag.Int64Var(&c.dsCapacityGiB, "datastore-gib", -1, "every datastore's capacity in GiB; -1: its file system's")
	flag.StringVar(&c.hostUUID, "host-uuid", "", "every host's hardware uuid (summary.hardware.uuid); default: a random one per host at start")
	flag.Int64Var(&c.dsFreeGiB, "datastore-free-gib", -1, "every datastore's free space in GiB at start; -1: its file system's")
}

// randomUUID is a version 4 uuid, lower case as hostd prints one.
func randomUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// installCapacity applies the flags; called once the model exists, before VMs are made.
func installCapacity() error {
	c := &capacityFlags
	for _, e := range simulator.Map.All("HostSystem") {
		hs, ok := e.(*simulator.HostSystem)
		if !ok || hs.Summary.Hardware == nil {
			continue
		}
		hw := *hs.Summary.Hardware // shared between vcsim's hosts: each gets its own
		if c.memoryMiB >= 0 {
			hw.MemorySize = c.memoryMiB << 20
		}
		if c.cpuCores >= 0 {
			hw.NumCpuCores = int16(c.cpuCores)
		}
		if c.cpuMHz >= 0 {
			hw.CpuMhz = int32(c.cpuMHz)
		}
		hw.Uuid = c.hostUUID
		if hw.Uuid == "" {
			id, err := randomUUID()
			if err != nil {
				return err
			}
			hw.Uuid = id
		}
		hs.Summary.Hardware = &hw
		if hs.Hardware != nil {
			info := *hs.Hardware // vcsim's ESX model shares it too
			info.SystemInfo.Uuid = hw.Uuid
			hs.Hardware = &info
		}
		if c.memoryUsedMiB >= 0 {
			hs.Summary.QuickStats.OverallMemoryUsage = int32(c.memoryUsedMiB)
		}
		if c.cpuUsedMHz >= 0 {
			hs.Summary.QuickStats.OverallCpuUsage = int32(c.cpuUsedMHz)
		}
	}
	for _, e := range simulator.Map.All("Datastore") {
		ds, ok := e.(*simulator.Datastore)
		if !ok {
			continue
		}
		if c.dsCapacityGiB >= 0 {
			ds.Summary.Capacity = c.dsCapacityGiB << 30
		}
		if c.dsFreeGiB >= 0 {
			ds.Summary.FreeSpace = c.dsFreeGiB << 30
			ds.Info.GetDatastoreInfo().FreeSpace = ds.Summary.FreeSpace
		}
	}
	return nil
}
