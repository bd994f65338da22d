/**
 * Which Mini holds what. Three Minis on a desk, memory split into calendar, email and files, each domain led by
 * one Mini with the other two as hot standbys. `shardmind up` runs all of it on this machine as one node;
 * `shardmind host --node mini-2` runs one Mini of the real cluster; `shardmind apply` moves shards to match edits.
 */
import { defineConfig } from './config/index.ts';

const DAY = 1;

export default defineConfig({
  cluster: { name: 'desk' },
  nodes: [
    { name: 'mini-1', nats: ['nats://mini-1.local:4222', 'nats://mini-2.local:4222', 'nats://mini-3.local:4222'], natsServer: { host: 'mini-1.local' } },
    { name: 'mini-2', nats: ['nats://mini-2.local:4222', 'nats://mini-1.local:4222', 'nats://mini-3.local:4222'], natsServer: { host: 'mini-2.local' } },
    { name: 'mini-3', nats: ['nats://mini-3.local:4222', 'nats://mini-1.local:4222', 'nats://mini-2.local:4222'], natsServer: { host: 'mini-3.local' } },
  ],
  domains: [
    {
      name: 'calendar',
      description: 'Meetings, events, scheduling, availability, time zones, invitations and working hours.',
      seeds: [
        'book a meeting with Alice next Tuesday at 3pm',
        'the user never takes meetings before 10am',
        'reschedule the standup to Thursday morning',
        'find a free slot for a 30 minute call this week',
        'decline the invite for Friday afternoon',
        'the team sync is every Monday at 9:30',
        'block two hours of focus time tomorrow',
        'what is on my calendar today',
        'Bob is in the Pacific time zone',
        'move the dentist appointment to next week',
        'set up a recurring one-on-one every other Wednesday',
        'the user prefers video calls on Zoom for external meetings',
      ],
      predicates: {
        earliest_meeting_time: { cardinality: 'one', halfLifeDays: 180 * DAY },
        works_in_timezone: { cardinality: 'one', halfLifeDays: 365 * DAY },
        prefers_meeting_tool: { cardinality: 'one', halfLifeDays: 90 * DAY },
        attends: { cardinality: 'many', halfLifeDays: 30 * DAY },
      },
      defaultPredicate: { cardinality: 'many', halfLifeDays: 60 * DAY },
    },
    {
      name: 'email',
      description: 'Email messages, replies, inbox, attachments, recipients, newsletters, drafts and mail preferences.',
      seeds: [
        'send Bob the Q3 report by email',
        'the user prefers PDF attachments over links',
        'reply to the message from the landlord',
        'archive all newsletters in the inbox',
        'draft a follow-up email to the recruiter',
        'forward the invoice to accounting',
        'Carol signs her emails with her first name only',
        'unsubscribe from the marketing mailing list',
        'cc my manager on messages to clients',
        'the user writes formal emails to customers',
        'flag unread mail from the CEO as urgent',
        'attach the contract to the reply',
      ],
      predicates: {
        prefers_attachment_format: { cardinality: 'one', halfLifeDays: 120 * DAY },
        email_address: { cardinality: 'one', halfLifeDays: 365 * DAY },
        signs_emails_as: { cardinality: 'one', halfLifeDays: 180 * DAY },
      },
      defaultPredicate: { cardinality: 'many', halfLifeDays: 45 * DAY },
    },
    {
      name: 'files',
      description: 'Documents, folders, files on disk and in the cloud, spreadsheets, versions, sharing and backups.',
      seeds: [
        'save the spreadsheet to the shared drive',
        'where is the latest version of the budget document',
        'the quarterly reports live in Documents/Finance/Reports',
        'rename the folder of scanned receipts',
        'share the slide deck with the design team',
        'back up the photos folder every night',
        'convert the Word document to PDF',
        'the user keeps drafts in the Drafts folder on iCloud',
        'delete old versions of the presentation',
        'compress the project directory into a zip archive',
        'the contract template is in Google Drive under Legal',
        'find the file I edited yesterday',
      ],
      predicates: {
        stored_in: { cardinality: 'one', halfLifeDays: 90 * DAY },
        shared_with: { cardinality: 'many', halfLifeDays: 60 * DAY },
      },
      defaultPredicate: { cardinality: 'many', halfLifeDays: 60 * DAY },
    },
  ],
  placement: {
    calendar: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] },
    email: { leader: 'mini-2', standbys: ['mini-3', 'mini-1'] },
    files: { leader: 'mini-3', standbys: ['mini-1', 'mini-2'] },
  },
  dataDir: './.shardmind',
  limits: { maxPayloadBytes: 64 * 1024, minSeqWaitMs: 2000, maxRecallLimit: 100 },
  replication: { leaseMs: 1500, heartbeatMs: 250 },
  router: { fanoutMargin: 0.25, fanoutFloor: 0.15, rerouteMargin: 0.2, shardTimeoutMs: 1500 },
});
