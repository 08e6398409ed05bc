// Drives zkteco-js (npm) against a kiosk's ZK side: prints the users and the attendance log
// it read as JSON. usage: node zk_pull.js HOST PORT
const Zkteco = require("zkteco-js");

async function main() {
    const [host, port] = process.argv.slice(2);
    const dev = new Zkteco(host, Number(port), 10000, 4000);
    await dev.createSocket();
    const users = await dev.getUsers();
    const att = await dev.getAttendances();
    await dev.disconnect();
    console.log("RESULT " + JSON.stringify({
        users: users.data.map((u) => ({ uid: u.uid, user_id: u.userId, name: u.name })),
        attendance: att.data.map((a) => [a.user_id, a.state, a.type]),
        error: att.err ? String(att.err) : null,
    }));
}

main().catch((e) => {
    console.log("RESULT " + JSON.stringify({ error: String(e) }));
    process.exit(2);
});
