package main

import (
	"context"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// expireSessions ends every client session at once, as a host reboot or the idle timeout
// would, so that tests can check that a cached session is renewed transparently without
// waiting for -session-idle. It returns how many sessions it ended.
func (inv *inventory) expireSessions(ctx context.Context) (int, error) {
	ref := *inv.client.ServiceContent.SessionManager
	var sm mo.SessionManager
	if err := property.DefaultCollector(inv.client).RetrieveOne(ctx, ref, []string{"sessionList"}, &sm); err != nil {
		return 0, err
	}
	var ids []string
	for _, s := range sm.SessionList {
		ids = append(ids, s.Key)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	_, err := methods.TerminateSession(ctx, inv.client, &types.TerminateSession{This: ref, SessionId: ids})
	return len(ids), err
}
