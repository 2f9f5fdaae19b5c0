// Package metrics writes Prometheus metrics to a file that node_exporter's
// textfile collector serves (Textfile), and holds what roomd's programs
// share in doing so: the process's memory, and a gate that holds the
// metrics that could move with presence while a visit's privacy applies.
//
// Why a file and not a listener: a Pi beside a room runs node_exporter
// anyway, for what the operations team must see of the machine itself (the
// disk filling, the clock's synchronisation, CPU, temperature), and its
// textfile collector serves whatever a program leaves in its directory. So
// roomd opens no port (no new surface to secure, no TLS or passwords to
// manage on the Pi, nothing for a scrape to reach into), spends no CPU on
// HTTP, and writes its figures on its own fixed schedule: no request from
// outside decides when the room's loop is looked at, so a scrape cannot be
// used to time what happens inside. The file goes on tmpfs (/run), so the
// writes cost the SD card nothing.
package metrics
