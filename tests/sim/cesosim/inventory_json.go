package main

import "context"

// inventoryVM is what GET /_ceso/inventory reports per VM: the simulator's own
// view, read with govmomi's Go client, for tests to compare ceso's listing with.
type inventoryVM struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Power string `json:"power"`
}

// inventoryJSON lists every VM with the power words ceso uses (on/off/suspended).
func (inv *inventory) inventoryJSON(ctx context.Context) (map[string][]inventoryVM, error) {
	vms, err := inv.vms(ctx, []string{"name", "runtime.powerState"})
	if err != nil {
		return nil, err
	}
	words := map[string]string{"poweredOn": "on", "poweredOff": "off", "suspended": "suspended"}
	out := make([]inventoryVM, 0, len(vms))
	for _, vm := range vms {
		out = append(out, inventoryVM{ID: vm.Self.Value, Name: vm.Name, Power: words[string(vm.Runtime.PowerState)]})
	}
	return map[string][]inventoryVM{"vms": out}, nil
}
