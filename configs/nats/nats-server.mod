// The NATS server of the clustered centre, pinned apart from roomd's own
// dependencies so that none of its modules (or the versions they would raise)
// reach the binaries roomd ships. The tests of the clustered centre build it:
//   go build -modfile=configs/nats/nats-server.mod -o BIN github.com/nats-io/nats-server/v2
// (see .ci/nats-server.sh); a ministry installs NATS's own packages instead
// (docs/centre.md).
module github.com/roomd/roomd

go 1.26.0

tool github.com/nats-io/nats-server/v2

require (
	github.com/antithesishq/antithesis-sdk-go v0.9.0-default-no-op // indirect
	github.com/google/go-tpm v0.9.8 // indirect
	github.com/klauspost/compress v1.20.4 // indirect
	github.com/minio/highwayhash v1.0.4 // indirect
	github.com/nats-io/jwt/v2 v2.8.3 // indirect
	github.com/nats-io/nats-server/v2 v2.15.3 // indirect
	github.com/nats-io/nkeys v0.4.17 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
