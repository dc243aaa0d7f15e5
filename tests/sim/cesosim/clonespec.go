package main

import (
	"context"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// vcsim 0.24.2's CloneVM_Task copies the source's CPU count, memory and uuid and ignores
// those of spec.config, which vCenter applies to the clone. applyCloneConfig gives the
// clone what the request asked for, through an ordinary reconfiguration.
func (inv *inventory) applyCloneConfig(ctx context.Context, clone types.ManagedObjectReference, req []byte) error {
	m, err := simulator.UnmarshalBody(types.TypeFunc(), req)
	if err != nil {
		return err
	}
	cfg := m.Body.(*types.CloneVM_Task).Spec.Config
	if cfg == nil {
		return nil
	}
	spec := types.VirtualMachineConfigSpec{
		NumCPUs:           cfg.NumCPUs,
		NumCoresPerSocket: cfg.NumCoresPerSocket,
		MemoryMB:          cfg.MemoryMB,
		Annotation:        cfg.Annotation,
		Uuid:              cfg.Uuid,
	}
	if spec.NumCPUs == 0 && spec.NumCoresPerSocket == 0 && spec.MemoryMB == 0 && spec.Annotation == "" && spec.Uuid == "" {
		return nil
	}
	task, err := object.NewVirtualMachine(inv.client, clone).Reconfigure(ctx, spec)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}
