"""WhatsApp through Twilio: the channel, its webhook form parsing and its REST sending."""

from adapters.whatsapp.channel import EMPTY_TWIML, WhatsAppChannel

__all__ = ["EMPTY_TWIML", "WhatsAppChannel"]
