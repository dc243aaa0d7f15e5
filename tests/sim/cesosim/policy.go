package main

// What a real standalone ESXi host refuses that vcsim happily does.

// vCenterOnly lists methods that a standalone host answers with NotSupported, whatever
// its license (govmomi issues #1469 and #673; docs/esxi.md). vcsim implements them in
// both models, so in the esx model the front end refuses them itself.
var vCenterOnly = map[string]bool{
	"CloneVM_Task":         true,
	"MarkAsTemplate":       true,
	"MarkAsVirtualMachine": true,
}

const notSupportedMsg = "The operation is not supported on the object."

// With a free ("vSphere Hypervisor") license the API is read-only: every method that
// changes something fails with RestrictedVersion. We cannot know every write method, but
// we can know the reads, so -free allows exactly these and refuses everything else.
// Add a method here only if it changes nothing on the host (sessions and the caller's own
// collectors/views excepted: they are how a read-only client works).
var freeLicenseAllowed = map[string]bool{
	// sessions
	"RetrieveServiceContent":      true,
	"Login":                       true,
	"LoginByToken":                true,
	"LoginExtensionByCertificate": true,
	"Logout":                      true,
	"SessionIsActive":             true,
	"AcquireCloneTicket":          true,
	"CloneSession":                true,
	"SetLocale":                   true,
	"CurrentTime":                 true,
	"AcquireGenericServiceTicket": true,

	// property collector and views: the client's own read machinery
	"RetrieveProperties":           true,
	"RetrievePropertiesEx":         true,
	"ContinueRetrievePropertiesEx": true,
	"CancelRetrievePropertiesEx":   true,
	"CreateFilter":                 true,
	"DestroyPropertyFilter":        true,
	"CreatePropertyCollector":      true,
	"DestroyPropertyCollector":     true,
	"WaitForUpdates":               true,
	"WaitForUpdatesEx":             true,
	"CheckForUpdates":              true,
	"CancelWaitForUpdates":         true,
	"Fetch":                        true, // undocumented, used by ovftool
	"CreateContainerView":          true,
	"CreateListView":               true,
	"CreateListViewFromView":       true,
	"CreateInventoryView":          true,
	"ModifyListView":               true,
	"ResetListView":                true,
	"ResetListViewFromView":        true,
	"OpenInventoryViewFolder":      true,
	"CloseInventoryViewFolder":     true,
	"DestroyView":                  true,

	// searching and browsing
	"FindByUuid":                     true,
	"FindAllByUuid":                  true,
	"FindByIp":                       true,
	"FindAllByIp":                    true,
	"FindByDnsName":                  true,
	"FindAllByDnsName":               true,
	"FindByInventoryPath":            true,
	"FindByDatastorePath":            true,
	"FindChild":                      true,
	"SearchDatastore_Task":           true,
	"SearchDatastoreSubFolders_Task": true,

	// queries
	"QueryConfigOption":               true,
	"QueryConfigOptionDescriptor":     true,
	"QueryConfigOptionEx":             true,
	"QueryConfigTarget":               true,
	"QueryTargetCapabilities":         true,
	"QueryVirtualDiskUuid":            true,
	"QueryVirtualDiskGeometry":        true,
	"QueryVirtualDiskFragmentation":   true,
	"QueryOptions":                    true,
	"QueryMemoryOverhead":             true,
	"QueryMemoryOverheadEx":           true,
	"RetrieveHardwareUptime":          true,
	"QueryNetworkHint":                true,
	"QueryAvailablePerfMetric":        true,
	"QueryPerf":                       true,
	"QueryPerfComposite":              true,
	"QueryPerfCounter":                true,
	"QueryPerfCounterByLevel":         true,
	"QueryPerfProviderSummary":        true,
	"QueryEvents":                     true,
	"RetrieveArgumentDescription":     true,
	"CreateCollectorForEvents":        true,
	"CreateCollectorForTasks":         true,
	"ReadNextEvents":                  true,
	"ReadPreviousEvents":              true,
	"ReadNextTasks":                   true,
	"ReadPreviousTasks":               true,
	"ResetCollector":                  true,
	"RewindCollector":                 true,
	"SetCollectorPageSize":            true,
	"DestroyCollector":                true,
	"HasPrivilegeOnEntity":            true,
	"HasPrivilegeOnEntities":          true,
	"HasUserPrivilegeOnEntities":      true,
	"FetchUserPrivilegeOnEntities":    true,
	"RetrieveAllPermissions":          true,
	"RetrieveEntityPermissions":       true,
	"RetrieveRolePermissions":         true,
	"RetrieveUserGroups":              true,
	"QueryLicenseSourceAvailability":  true,
	"QueryLicenseUsage":               true,
	"QuerySupportedFeatures":          true,
	"DecodeLicense":                   true,
	"QueryAssignedLicenses":           true,
	"QueryAvailableDisksForVmfs":      true,
	"QueryVmfsDatastoreCreateOptions": true,

	// Deliberately NOT here, although arguably reads: ExportVm and the HttpNfcLease
	// methods, QueryChangedDiskAreas (CBT is not available via the API on free
	// licenses), AcquireTicket/AcquireMksTicket. Refusing what a real free host might
	// allow keeps tests from depending on it; ceso's free-license path is SSH.
}

const restrictedVersionMsg = "Current license or ESXi version prohibits execution of the requested operation."

// sessionRequiredByUs are methods vcsim serves without a session; a real host answers
// them with NotAuthenticated, so a client that forgot its cookie fails here too.
var sessionRequiredByUs = map[string]bool{
	"RetrieveProperties":   true,
	"RetrievePropertiesEx": true,
}
