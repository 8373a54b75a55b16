// Loads proto/ at run time with @grpc/proto-loader. The server, the client and the CLI share
// these options, so int64 fields are decimal strings and enums are their names everywhere
// (DESIGN.md section 2: bigint in code, int64 on the wire, strings in between).
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import type { ProtoGrpcType } from '../gen/kavka.js';
import type { ProtoGrpcType as ControllerProtoGrpcType } from '../gen/controller.js';
import type { ProtoGrpcType as ReplicationProtoGrpcType } from '../gen/replication.js';

export const PROTO_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
export const KAVKA_PROTO_FILES = ['kavka/v1/kavka.proto'];

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export function loadKavkaPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(KAVKA_PROTO_FILES, PROTO_LOADER_OPTIONS);
}

export function loadKavkaGrpc(definition = loadKavkaPackageDefinition()): ProtoGrpcType {
  return grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
}

/** The Controller service's file; it imports kavka.proto, so its definition holds both. */
export const CONTROLLER_PROTO_FILES = ['kavka/v1/controller.proto'];

export function loadControllerPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(CONTROLLER_PROTO_FILES, PROTO_LOADER_OPTIONS);
}

export function loadControllerGrpc(definition = loadControllerPackageDefinition()): ControllerProtoGrpcType {
  return grpc.loadPackageDefinition(definition) as unknown as ControllerProtoGrpcType;
}

/** The Replication service's file (kavka.v1.Replication, between brokers). */
export const REPLICATION_PROTO_FILES = ['kavka/v1/replication.proto'];

export function loadReplicationGrpc(): ReplicationProtoGrpcType {
  return grpc.loadPackageDefinition(protoLoader.loadSync(REPLICATION_PROTO_FILES, PROTO_LOADER_OPTIONS)) as unknown as ReplicationProtoGrpcType;
}
