package server

import (
	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/protocol"
)

// routeTable is the one gate table: every opcode the broker serves, the
// permission it needs (security-and-advanced.md §3.5, "Broker MUST") and
// its handler. Opcodes left out are refused as unknown.
func routeTable() *[256]route {
	var t [256]route
	set := func(op protocol.Op, g auth.Gate, serve func(*conn, protocol.Op, []byte, []byte) ([]byte, error)) {
		t[op] = route{gate: g, serve: serve}
	}
	setFirst := func(op protocol.Op, g auth.Gate, serve func(*conn, protocol.Op, []byte, []byte) ([]byte, error)) {
		t[op] = route{gate: g, gateFirst: true, serve: serve}
	}

	// Core data and group ops (core.md §6, §9).
	set(protocol.OpProduce, auth.GateWrite, (*conn).produce)
	set(protocol.OpConsume, auth.GateRead, (*conn).consume)
	set(protocol.OpConsumeZeroCopy, auth.GateRead, (*conn).consume)
	set(protocol.OpCreateTopic, auth.GateTopicAdmin, (*conn).createTopic)
	set(protocol.OpSubscribe, auth.GateRead, (*conn).subscribe)
	set(protocol.OpCommit, auth.GateRead, (*conn).commit)
	set(protocol.OpFetch, auth.GateRead, (*conn).fetch)
	set(protocol.OpFetchBinary, auth.GateRead, (*conn).fetch)
	set(protocol.OpListTopics, auth.GateSession, (*conn).listTopics)
	set(protocol.OpDeleteTopic, auth.GateTopicAdmin, (*conn).deleteTopic)
	set(protocol.OpClusterMetadata, auth.GateSession, (*conn).clusterMetadata)
	set(protocol.OpGetOffset, auth.GateRead, (*conn).getOffset)
	set(protocol.OpResetOffset, auth.GateTopicAdmin, (*conn).resetOffset)
	set(protocol.OpListGroups, auth.GateUserAdmin, (*conn).listGroups)
	set(protocol.OpDescribeGroup, auth.GateUserAdmin, (*conn).describeGroup)
	set(protocol.OpGetLag, auth.GateRead, (*conn).getLag)
	set(protocol.OpDeleteGroup, auth.GateUserAdmin, (*conn).deleteGroup)

	// Schema registry, DLQ, delayed/TTL, transactions (§§8–11).
	// CANCEL_DELAYED 0x31 has no row: it answers "unknown opcode: 49" (§10.2).
	set(protocol.OpRegisterSchema, auth.GateWriteOrAdminSession, (*conn).registerSchema)
	set(protocol.OpGetSchema, auth.GateSession, (*conn).getSchema)
	set(protocol.OpListSchemas, auth.GateSession, (*conn).listSchemas)
	set(protocol.OpValidateSchema, auth.GateSession, (*conn).validateSchema)
	set(protocol.OpProduceWithSchema, auth.GateWrite, (*conn).produceWithSchema)
	set(protocol.OpDeleteSchema, auth.GateUserAdmin, (*conn).deleteSchema)
	set(protocol.OpFetchDLQ, auth.GateRead, (*conn).fetchDLQ)      // read on the named topic
	set(protocol.OpReplayDLQ, auth.GateWrite, (*conn).replayDLQ)   // write on the record's original topic
	set(protocol.OpPurgeDLQ, auth.GateUserAdmin, (*conn).purgeDLQ) // user management
	set(protocol.OpProduceDelayed, auth.GateWrite, (*conn).produceDelayed)
	set(protocol.OpProduceWithTTL, auth.GateWrite, (*conn).produceWithTTL)
	set(protocol.OpBeginTx, auth.GateSession, (*conn).beginTx)
	// COMMIT/ABORT/PRODUCE_TX also check that the transaction belongs to
	// the session's user (broker: ErrTxnNotOwner → "unauthorized").
	set(protocol.OpCommitTx, auth.GateSession, (*conn).commitTx)
	set(protocol.OpAbortTx, auth.GateSession, (*conn).abortTx)
	set(protocol.OpProduceTx, auth.GateWrite, (*conn).produceTx)

	// Identity, users, ACLs, roles (security-and-advanced.md §4–6).
	set(protocol.OpAuth, auth.GateNone, (*conn).authenticate)
	set(protocol.OpWhoAmI, auth.GateNone, (*conn).whoAmI)
	setFirst(protocol.OpUserCreate, auth.GateUserAdmin, (*conn).userCreate)
	setFirst(protocol.OpUserDelete, auth.GateUserAdmin, (*conn).userDelete)
	setFirst(protocol.OpUserUpdate, auth.GateUserAdmin, (*conn).userUpdate)
	setFirst(protocol.OpUserList, auth.GateUserAdmin, (*conn).userList)
	setFirst(protocol.OpUserGet, auth.GateUserAdmin, (*conn).userGet)
	setFirst(protocol.OpACLSet, auth.GateUserAdmin, (*conn).aclSet)
	setFirst(protocol.OpACLGet, auth.GateUserAdmin, (*conn).aclGet)
	setFirst(protocol.OpACLDelete, auth.GateUserAdmin, (*conn).aclDelete)
	setFirst(protocol.OpACLList, auth.GateUserAdmin, (*conn).aclList)
	// PASSWORD_CHANGE gates itself on whose password it is (§5.6): own
	// account with the old password, anyone else's with user management.
	set(protocol.OpPasswordChange, auth.GateNone, (*conn).passwordChange)
	set(protocol.OpRoleList, auth.GateSession, (*conn).roleList)

	// Audit (§7), both the Go and the Java layouts.
	setFirst(protocol.OpAuditQuery, auth.GateUserAdmin, (*conn).auditQuery)
	setFirst(protocol.OpAuditExport, auth.GateUserAdmin, (*conn).auditExport)
	setFirst(protocol.OpAuditQueryJava, auth.GateUserAdmin, (*conn).auditQueryJava)
	setFirst(protocol.OpAuditExportJava, auth.GateUserAdmin, (*conn).auditExportJava)
	return &t
}
