"""archive-bot: the service layer, the Telegram bot, the terminal commands and the subscriber store."""
