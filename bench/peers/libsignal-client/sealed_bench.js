'use strict';
/*
 * bench/peers/libsignal-client/sealed_bench.js -- the libsignal-client side of
 * sotto-bench-sealed (bench/sealed_bench.c). Run by that program only, after
 * `make bench` has installed this folder's package-lock (npm ci).
 *
 * Usage: node sealed_bench.js SETUP_FILE
 * SETUP_FILE is one JSON object written by sotto-bench-sealed: hex keys
 * (trust root public, sender and recipient identity key pairs), the sender
 * certificate made by libsotto (libsignal's byte format), and for each
 * message size the inner content and one message sealed by libsotto.
 *
 * For each size, with libsignal-client's public API:
 *   1. opens libsotto's sealed message (sealedSenderDecryptToUsmc, then
 *      SenderCertificate.validate under the trust root) and checks the
 *      content, sender and device: a cross-implementation check;
 *   2. times `encrypt`: UnidentifiedSenderMessageContent.new(...) +
 *      sealedSenderEncrypt(...) (sealed sender v1, first byte 0x11), the
 *      same work as sotto_sealed_encrypt (build the inner message, seal);
 *   3. times `decrypt`: sealedSenderDecryptToUsmc(...) + validate(...), the
 *      same work as sotto_sealed_decrypt (both MACs, certificate chain and
 *      expiry, sender key check); the content is compared every time.
 * No session is needed: the inner content is opaque to the sealing layer.
 * Time is this process's CPU time (process.cpuUsage), best of `runs`.
 *
 * Output, one line each: `peer size=N encrypt_ops_per_s=X decrypt_ops_per_s=Y
 * sealed_len=L cross=ok` and `peer_sealed size=N HEX` (a message sealed by
 * libsignal-client, which sotto-bench-sealed opens with libsotto).
 * Exit code 0 on success; any mismatch throws (exit 1).
 */
const fs = require('fs');
const SignalClient = require('@signalapp/libsignal-client');

const {
    PrivateKey,
    PublicKey,
    IdentityKeyPair,
    IdentityKeyStore,
    ProtocolAddress,
    SenderCertificate,
    PlaintextContent,
    UnidentifiedSenderMessageContent,
    CiphertextMessage,
    sealedSenderEncrypt,
    sealedSenderDecryptToUsmc,
} = SignalClient;

const hex = (s) => new Uint8Array(Buffer.from(s, 'hex'));

/* The smallest identity store sealing needs: our key pair and the peer's
 * public identity key. */
class BenchIdentityStore extends IdentityKeyStore {
    constructor(priv, theirs) {
        super();
        this.priv = priv;
        this.theirs = theirs;
    }
    async getIdentityKey() {
        return this.priv;
    }
    async getLocalRegistrationId() {
        return 1;
    }
    async saveIdentity() {
        return 0;
    }
    async isTrustedIdentity() {
        return true;
    }
    async getIdentity() {
        return this.theirs;
    }
}

function cpuSeconds() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

function sameBytes(a, b) {
    return Buffer.from(a).equals(Buffer.from(b));
}

async function main() {
    const setup = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
    const trustRoot = PublicKey.deserialize(hex(setup.trust_root));
    const senderPriv = PrivateKey.deserialize(hex(setup.sender_priv));
    const senderPub = PublicKey.deserialize(hex(setup.sender_pub));
    const recipientPriv = PrivateKey.deserialize(hex(setup.recipient_priv));
    const recipientPub = PublicKey.deserialize(hex(setup.recipient_pub));
    if (!sameBytes(senderPriv.getPublicKey().serialize(), senderPub.serialize()) ||
        !sameBytes(recipientPriv.getPublicKey().serialize(), recipientPub.serialize())) {
        throw new Error('key pairs do not match');
    }
    const cert = SenderCertificate.deserialize(hex(setup.sender_cert));
    const recipientAddr = ProtocolAddress.new(setup.recipient, 1);
    const senderStore = new BenchIdentityStore(senderPriv, recipientPub);
    const recipientStore = new BenchIdentityStore(recipientPriv, senderPub);
    const now = setup.now_ms;

    async function open(sealed) {
        const usmc = await sealedSenderDecryptToUsmc(sealed, recipientStore);
        if (!usmc.senderCertificate().validate(trustRoot, now)) {
            throw new Error('sender certificate does not validate');
        }
        return usmc;
    }

    for (const m of setup.messages) {
        const content = hex(m.content);
        /* 1. libsotto's sealed message, opened by libsignal-client. */
        const theirs = await open(hex(m.sotto_sealed));
        const tc = theirs.senderCertificate();
        if (!sameBytes(theirs.contents(), content) || theirs.msgType() !== m.type ||
            tc.senderUuid() !== setup.sender || tc.senderDeviceId() !== setup.sender_device) {
            throw new Error(`size ${content.length}: libsotto's sealed message does not open`);
        }

        const inner = CiphertextMessage.from(PlaintextContent.deserialize(content));
        let sealed = null;
        let bestEnc = 0;
        let bestDec = 0;
        for (let run = 0; run < setup.runs; run++) {
            /* 2. encrypt */
            let t0 = cpuSeconds();
            for (let i = 0; i < m.count; i++) {
                const usmc = UnidentifiedSenderMessageContent.new(inner, cert, 0, null);
                sealed = await sealedSenderEncrypt(usmc, recipientAddr, senderStore);
            }
            let dt = cpuSeconds() - t0;
            bestEnc = Math.max(bestEnc, m.count / dt);
            if (sealed[0] !== 0x11) {
                throw new Error(`not sealed sender v1: first byte ${sealed[0]}`);
            }
            /* 3. decrypt */
            t0 = cpuSeconds();
            for (let i = 0; i < m.count; i++) {
                const usmc = await open(sealed);
                if (!sameBytes(usmc.contents(), content)) {
                    throw new Error('content differs');
                }
            }
            dt = cpuSeconds() - t0;
            bestDec = Math.max(bestDec, m.count / dt);
        }
        console.log(`peer size=${content.length} encrypt_ops_per_s=${bestEnc.toFixed(0)} ` +
                    `decrypt_ops_per_s=${bestDec.toFixed(0)} sealed_len=${sealed.length} cross=ok`);
        console.log(`peer_sealed size=${content.length} ${Buffer.from(sealed).toString('hex')}`);
    }
}

main().catch((e) => {
    console.error(`sealed_bench.js: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
});
