package main

// RegisterVM_Task reads the .vmx as hostd does. vcsim registers an empty VM named after
// the directory, whatever the file says; a real host takes the VM's identity (BIOS and
// instance uuid), hardware, disks, NICs and ExtraConfig from it. A VM moved host to host
// (ceso-mv) must come back with the uuids it had, so after vcsim's registration the
// .vmx is applied the way the SSH side's `vim-cmd solo/registervm` does (shim_vmx.go),
// reading the file from the datastore directory.

import (
	"context"
	"io/ioutil"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func (inv *inventory) applyRegisteredVMX(ctx context.Context, req []byte, ref types.ManagedObjectReference) error {
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
	readLocal := func(dsPath string) ([]byte, error) {
		p, err := localPath(dirs, dsPath)
		if err != nil {
			return nil, err
		}
		return ioutil.ReadFile(p)
	}
	text, err := readLocal(rv.Path)
	if err != nil {
		return err
	}
	vmx, err := parseVMX(rv.Path, string(text))
	if err != nil {
		return err
	}
	if rv.Name != "" { // the name given wins over the file's displayName
		vmx.vals["displayname"] = rv.Name
	}
	h := &shimHost{ctx: ctx, c: inv.client, readLocal: readLocal}
	return h.applyVMX(object.NewVirtualMachine(inv.client, ref), vmx)
}
