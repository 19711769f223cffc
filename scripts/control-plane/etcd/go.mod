// Wrapper module: etcd's server module carries local replaces, so it is built as a dependency.
module local/marketplace-etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v3.6.8
