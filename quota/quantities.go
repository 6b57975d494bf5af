package quota

// Byte sizes.
const (
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
)

// ServerQuantities is what moves with a server on reassign
// (docs/quota.md#what-an-item-carries): the VM, its total vCPUs and RAM, the disk of its
// system volume, and vCPUs and RAM again if it is running (operstate
// STARTED, BUILD or ERROR, i.e. status ACTIVE, BUILD or ERROR).
func ServerQuantities(vcpus, ramMiB, systemDiskGiB int64, running bool) Quantities {
	q := Quantities{
		VM:       1,
		TotalCPU: vcpus,
		TotalRAM: ramMiB * MiB,
		Disk:     systemDiskGiB * GiB,
	}
	if running {
		q[CPU] = vcpus
		q[RAM] = ramMiB * MiB
	}
	return q
}

// ServerRunning reports whether a server status charges cyclades.cpu and
// cyclades.ram.
func ServerRunning(status string) bool {
	switch status {
	case "ACTIVE", "BUILD", "ERROR", "REBOOT", "RESIZE":
		return true
	}
	return false
}

// ContainerQuantities is what moves with a Pithos container.
func ContainerQuantities(bytes int64) Quantities { return Quantities{DiskSpace: bytes} }

// VolumeQuantities is what moves with a (non-system) volume of sizeGiB.
func VolumeQuantities(sizeGiB int64) Quantities { return Quantities{Disk: sizeGiB * GiB} }

// FloatingIPQuantities is what moves with a floating IP.
func FloatingIPQuantities() Quantities { return Quantities{FloatingIP: 1} }

// NetworkQuantities is what moves with a private network.
func NetworkQuantities() Quantities { return Quantities{PrivateNetwork: 1} }
