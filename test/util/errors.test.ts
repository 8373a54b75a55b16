import { describe, expect, it } from 'vitest';
import protobuf from 'protobufjs';
import { join } from 'node:path';
import { ERROR_CODES } from '../../src/util/errors.js';
import { PROTO_DIR } from '../../src/proto/index.js';

describe('error codes', () => {
  it('lists the same Kafka names with the same numbers in code and in the proto enum', () => {
    const root = protobuf.loadSync(join(PROTO_DIR, 'kavka/v1/errors.proto'));
    const protoEnum = root.lookupEnum('kavka.v1.ErrorCode').values;
    expect(protoEnum).toEqual(ERROR_CODES);
  });

  it("uses Kafka's numbers for the codes clients see most", () => {
    expect(ERROR_CODES.OFFSET_OUT_OF_RANGE).toBe(1);
    expect(ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION).toBe(3);
    expect(ERROR_CODES.NOT_LEADER_OR_FOLLOWER).toBe(6);
    expect(ERROR_CODES.MESSAGE_TOO_LARGE).toBe(10);
    expect(ERROR_CODES.INVALID_TOPIC_EXCEPTION).toBe(17);
    expect(ERROR_CODES.NOT_ENOUGH_REPLICAS).toBe(19);
    expect(ERROR_CODES.TOPIC_ALREADY_EXISTS).toBe(36);
  });
});
