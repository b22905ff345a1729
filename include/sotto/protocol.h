/*
 * sotto/protocol.h -- message type codes and protocol constants shared by
 * the 1:1 (sotto/session.h) and group (sotto/group.h) APIs.
 *
 * Spec: shared/specs/signal-protocol.md sections 1.2 and 2.5. Message types
 * are not inside the message bytes; a transport must carry them alongside.
 */
#ifndef SOTTO_PROTOCOL_H
#define SOTTO_PROTOCOL_H

#include "sotto/common.h"

#define SOTTO_MESSAGE_VERSION 3            /* the only version written or accepted */
#define SOTTO_MSG_SIGNAL 2                 /* SignalMessage */
#define SOTTO_MSG_PREKEY 3                 /* PreKeySignalMessage */
#define SOTTO_MSG_SENDERKEY 4              /* SenderKeyMessage */
#define SOTTO_MSG_SENDERKEY_DISTRIBUTION 5 /* SenderKeyDistributionMessage */

#define SOTTO_MAX_FORWARD_JUMP 2000        /* counter/iteration jump accepted */
#define SOTTO_MAX_MESSAGE_KEYS 2000        /* skipped message keys kept per chain */
#define SOTTO_MAX_RECEIVER_CHAINS 5        /* receiver chains kept per session state */
#define SOTTO_MAX_ARCHIVED_STATES 40       /* previous session states kept per record */
#define SOTTO_MAX_SENDER_KEY_STATES 5      /* sender-key states kept per record */
#define SOTTO_SIGNAL_MAC_BYTES 8           /* truncated HMAC-SHA256 on SignalMessage */
#define SOTTO_MAX_MESSAGE_BYTES (1u << 20) /* largest message a decoder accepts */

#endif /* SOTTO_PROTOCOL_H */
